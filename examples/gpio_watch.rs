//! Waits for edges on a GPIO line and prints each with its timestamp, through either of the
//! kernel's two interfaces.
//!
//! **The character device** (`/dev/gpiochipN`, GPIO v2, Linux 5.10 and later) is the one to
//! use. The program requests the line by its offset on the chip, which is the GPIO number of
//! the board's pinout (GPIO 17 is line 17 of `gpiochip0` on a Raspberry Pi), as an input with
//! edge detection, and optionally a pull resistor and a debounce period. The kernel then
//! queues one 48-byte record per edge (`struct gpio_v2_line_event`: a `CLOCK_MONOTONIC`
//! timestamp taken in the interrupt, the kind of edge, sequence numbers) on the request's fd,
//! which the selector watches for READ. The ABI and the record decoding are in
//! `gpio_watch/gpio_v2.rs`, the ioctl and the loop in `gpio_watch/chardev.rs`.
//!
//! ```sh
//! cargo run --example gpio_watch -- --line 17                     # /dev/gpiochip0, both edges
//! cargo run --example gpio_watch -- --chip /dev/gpiochip0 --line 17 --edge falling \
//!     --bias pull-up --debounce-us 5000                           # a button to ground
//! ```
//!
//! **The sysfs interface** (`/sys/class/gpio`, deprecated) is kept as the legacy path. Its GPIO
//! numbers are not the pinout's: since Linux 6.6 each chip's numbers start at a base the
//! kernel picks (512 on a Raspberry Pi 4, so GPIO 17 is `gpio529`; before 6.6 it was
//! `gpio17`), and the base differs between boards and kernels. A pin's `value` file signals
//! an edge as `POLLPRI | POLLERR`, never as plain readability (the file can always be read),
//! so the file is registered for [`Interest::PRIORITY`]. After each edge the value is read
//! again from offset 0 (`lseek` + `read`), which is also what re-arms the notification. On a
//! Raspberry Pi (as root, or as a user in the `gpio` group), for GPIO 17
//! (`cat /sys/class/gpio/gpiochip*/base` gives the base to add):
//!
//! ```sh
//! echo 529 > /sys/class/gpio/export
//! echo in > /sys/class/gpio/gpio529/direction
//! echo both > /sys/class/gpio/gpio529/edge
//! cargo run --example gpio_watch -- /sys/class/gpio/gpio529/value
//! ```
//!
//! The `edge` file picks which edges interrupt (`rising`, `falling`, `both`); with `none`
//! (the default after export) no edge is ever reported, and the example says so.
//!
//! Run as a service, the watcher takes SIGHUP as a daemon should. Sent on purpose (`kill
//! -HUP`, `systemctl reload`), SIGHUP asks for the configuration to be reloaded; this program
//! has none, so it prints `SIGHUP: nothing to reload (no config file); still running` and
//! keeps watching. Sent because the terminal the watcher was started from went away (its
//! window closed, its ssh session ended), it ends the watcher with status 0 (see
//! `common::Hangup`). A bare selector has no signal support, so
//! `common::answer_sighup_on_a_thread` answers SIGHUP from a small event loop on a thread of
//! its own; the watching stays on the main thread. SIGINT and SIGTERM end it as usual.

mod common;
// Beside this file, in gpio_watch/ (a crate root's modules would otherwise be looked for in
// examples/, where cargo would take them for examples of their own).
#[path = "gpio_watch/chardev.rs"]
mod chardev;
#[path = "gpio_watch/gpio_v2.rs"]
mod gpio_v2;

use gpio_v2::{Bias, Edges};
use picosel::{DefaultSelector, Error, Interest};
use rustix::fd::AsFd;
use rustix::io::Errno;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: common::Usage = common::Usage {
    synopsis: "gpio_watch --line OFFSET [--chip CHIP] [--edge EDGES] [--bias BIAS] \
               [--debounce-us US] | gpio_watch PATH",
    details: "
The GPIO character device (Linux 5.10 and later):
  --line OFFSET      the line's offset on its chip, the GPIO number of the board's pinout:
                     GPIO 17 (header pin 11 of a Raspberry Pi) is --line 17
                     (required; no default)
  --chip CHIP        the chip: a path, or a name or number in /dev
                     (default: /dev/gpiochip0, the header's GPIOs on a Raspberry Pi)
  --edge EDGES       rising, falling or both (default: both)
  --bias BIAS        the pull resistor: as-is, pull-up, pull-down or disabled
                     (default: as-is)
  --debounce-us US   ignore pulses shorter than US microseconds (default: 0, none)
Each edge prints `edge rising line 17 seq 3 at 123.456789 s`: the kernel's CLOCK_MONOTONIC
timestamp of the edge and the line's sequence number; a gap says how many edges the
kernel dropped.

The legacy sysfs interface (its GPIO numbers differ from the pinout's since Linux 6.6):
  PATH               a sysfs GPIO value file, e.g. /sys/class/gpio/gpio529/value, whose
                     `edge` file is rising, falling or both

  -h, --help         print this help and exit

The selector: epoll, 1 registration (the line request, for READ; or PATH, for PRIORITY).
SIGHUP: nothing to reload (no config file): says so and keeps watching; but when the
terminal it was started from is gone, exit 0.
SIGINT, SIGTERM: end the watcher.",
};

/// Reads the pin's value from the start of the file, as the sysfs ABI requires after each
/// edge: the file holds `0\n` or `1\n`, and a read at the old offset would return nothing.
fn read_value(file: &File) -> io::Result<String> {
    rustix::fs::seek(file, rustix::fs::SeekFrom::Start(0))?;
    let mut buf = [0u8; 64];
    let n = rustix::io::read(file, &mut buf)?;
    let text = String::from_utf8_lossy(&buf[..n]);
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

/// An error message that tells the user what to do about `e` on `path`.
fn open_error(path: &Path, e: &io::Error) -> String {
    let p = path.display();
    match e.kind() {
        io::ErrorKind::NotFound => format!(
            "{p}: no such file. Export the pin and choose its edges first; sysfs numbers \
             are the chip's base (cat /sys/class/gpio/gpiochip*/base) plus the GPIO, so \
             GPIO 17 is 529 with base 512:\n  \
             echo 529 > /sys/class/gpio/export\n  \
             echo both > /sys/class/gpio/gpio529/edge\n\
             or use the character device, which takes the pinout's number: \
             gpio_watch --line 17"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "{p}: permission denied. Run as root, or add your user to the group that owns \
             it (on Raspberry Pi OS: sudo usermod -aG gpio $USER, then log in again)"
        ),
        _ => format!("{p}: {e}"),
    }
}

/// Warns when the pin's `edge` file says no edge will interrupt.
fn check_edge_setting(value_path: &Path) {
    let edge = value_path.with_file_name("edge");
    if let Ok(setting) = std::fs::read_to_string(&edge) {
        if setting.trim() == "none" {
            eprintln!(
                "warning: {} is 'none': no edge will be reported; \
                 echo both > {}",
                edge.display(),
                edge.display()
            );
        }
    }
}

/// The legacy sysfs mode: watches a `value` file for PRIORITY.
fn run_sysfs(path: PathBuf) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; pass the pin's value file, e.g. {}/value",
            path.display(),
            path.display()
        ));
    }
    let file = File::open(&path).map_err(|e| open_error(&path, &e))?;
    // Reading once before waiting consumes the state the file was opened in, so the first
    // wait reports the next edge and not the open.
    let mut value = read_value(&file).map_err(|e| format!("{}: {e}", path.display()))?;
    check_edge_setting(&path);

    let mut sel = DefaultSelector::<(), 1>::new();
    match sel.register(file.as_fd(), Interest::PRIORITY, ()) {
        Ok(_) => {}
        // epoll refuses files that cannot be polled (regular files) with EPERM.
        Err(Error::Os(Errno::PERM)) => {
            return Err(format!(
                "{} cannot signal edges (epoll refused it: a regular file?); \
                 pass a sysfs GPIO value file such as /sys/class/gpio/gpio17/value",
                path.display()
            ))
        }
        Err(e) => return Err(format!("{}: cannot watch: {e}", path.display())),
    }

    let start = common::monotonic();
    println!(
        "watching {} for edges; value={value} at {:.6}",
        path.display(),
        start.as_secs_f64()
    );
    loop {
        let events = sel.select(None).map_err(|e| format!("select: {e}"))?;
        for (_key, ready) in events {
            // The timestamp is taken first, as close to the wake-up as the program can get.
            let at = common::monotonic();
            if !(ready.is_priority() || ready.is_error()) {
                continue;
            }
            let now = read_value(&file).map_err(|e| format!("{}: {e}", path.display()))?;
            let edge = match (value.as_str(), now.as_str()) {
                ("0", "1") => "rising",
                ("1", "0") => "falling",
                // Both edges of a short pulse can pass before the read: the value is back.
                _ => "edge",
            };
            println!("{:.6} {edge} value={now}", at.as_secs_f64());
            value = now;
        }
    }
}

/// Which interface the command line asks for.
enum Mode {
    /// `--line` and its options: the character device.
    Chardev(LineArgs),
    /// `PATH`: a sysfs value file.
    Sysfs(PathBuf),
}

/// What `--line` and its options ask for.
struct LineArgs {
    chip: PathBuf,
    line: u32,
    edges: Edges,
    bias: Bias,
    debounce_us: u32,
}

/// The character-device mode: requests the line and prints its edge events.
fn run_chardev(a: LineArgs) -> Result<(), String> {
    let request = chardev::request(&a.chip, a.line, a.edges, a.bias, a.debounce_us)?;
    let edges = match a.edges {
        Edges::Rising => "rising",
        Edges::Falling => "falling",
        Edges::Both => "rising and falling",
    };
    let mut settings = String::new();
    if a.bias != Bias::AsIs {
        settings += &format!(", bias {}", a.bias.name());
    }
    if a.debounce_us > 0 {
        settings += &format!(", debounce {} us", a.debounce_us);
    }
    println!(
        "watching {} line {} for {edges} edges{settings}",
        a.chip.display(),
        a.line
    );
    // A line request's fd never ends; this one did (a test's pipe, or a kernel surprise).
    let ended = chardev::watch(request.as_fd(), &mut io::stdout())?;
    Err(match ended.partial {
        0 => format!("the line request ended after {} event(s)", ended.events),
        n => format!(
            "the line request ended after {} event(s), with a record cut short \
             ({n} of {} bytes)",
            ended.events,
            gpio_v2::EVENT_SIZE
        ),
    })
}

fn main() -> ExitCode {
    use common::Arg;
    let mut path = None;
    let (mut chip, mut line, mut edges, mut bias, mut debounce_us) = (None, None, None, None, None);
    let mut args = common::Args::new(&USAGE);
    while let Some(arg) = args.next() {
        match arg {
            Arg::Opt(opt) => match opt.as_str() {
                "--chip" => chip = Some(chardev::chip_path(&args.text("--chip"))),
                "--line" => line = Some(args.number::<u32>("--line")),
                "--edge" => edges = Edges::from_name(args.choice("--edge", &Edges::NAMES)),
                "--bias" => bias = Bias::from_name(args.choice("--bias", &Bias::NAMES)),
                "--debounce-us" => debounce_us = Some(args.number::<u32>("--debounce-us")),
                _ => args.unknown_option(&opt),
            },
            Arg::Operand(a) if path.is_none() => path = Some(PathBuf::from(a)),
            Arg::Operand(a) => args.unexpected_argument(&a),
        }
    }
    let chardev_mode = chip.is_some()
        || line.is_some()
        || edges.is_some()
        || bias.is_some()
        || debounce_us.is_some();
    let mode = if chardev_mode {
        if let Some(p) = path {
            // The character device takes no operand.
            args.unexpected_argument(p.as_os_str())
        }
        let Some(line) = line else {
            USAGE.required("--line")
        };
        Mode::Chardev(LineArgs {
            chip: chip.unwrap_or_else(|| PathBuf::from("/dev/gpiochip0")),
            line,
            edges: edges.unwrap_or(Edges::Both),
            bias: bias.unwrap_or(Bias::AsIs),
            debounce_us: debounce_us.unwrap_or(0),
        })
    } else if let Some(path) = path {
        Mode::Sysfs(path)
    } else {
        USAGE.required("--line or PATH")
    };
    // Before any other thread exists: see `answer_sighup_on_a_thread`.
    if let Err(e) = common::answer_sighup_on_a_thread() {
        eprintln!("gpio_watch: {e}");
        return ExitCode::FAILURE;
    }
    let result = match mode {
        Mode::Chardev(line) => run_chardev(line),
        Mode::Sysfs(path) => run_sysfs(path),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpio_watch: {e}");
            ExitCode::FAILURE
        }
    }
}
