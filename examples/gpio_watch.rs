//! Waits for edges on a sysfs GPIO `value` file and prints each with a monotonic timestamp.
//!
//! The sysfs GPIO ABI (`Documentation/ABI/obsolete/sysfs-gpio` in the kernel) signals an edge
//! on a pin's `value` file as `POLLPRI | POLLERR`, never as plain readability: the file can
//! always be read. So the file is registered for [`Interest::PRIORITY`]. After each edge the
//! value is read again from offset 0 (`lseek` + `read`), which is also what re-arms the
//! notification.
//!
//! On a Raspberry Pi (as root, or as a user in the `gpio` group), for GPIO 17:
//!
//! ```sh
//! echo 17 > /sys/class/gpio/export
//! echo in > /sys/class/gpio/gpio17/direction
//! echo both > /sys/class/gpio/gpio17/edge
//! cargo run --example gpio_watch -- /sys/class/gpio/gpio17/value
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

use picosel::{DefaultSelector, Error, Interest};
use rustix::fd::AsFd;
use rustix::io::Errno;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: common::Usage = common::Usage {
    synopsis: "gpio_watch PATH",
    details: "
  PATH          a sysfs GPIO value file, e.g. /sys/class/gpio/gpio17/value, whose `edge`
                file is rising, falling or both (required; no default)
  -h, --help    print this help and exit

The selector: epoll, 1 registration (PATH, for PRIORITY).
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
            "{p}: no such file. Export the pin and choose its edges first, for GPIO 17:\n  \
             echo 17 > /sys/class/gpio/export\n  \
             echo both > /sys/class/gpio/gpio17/edge"
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

fn run(path: PathBuf) -> Result<(), String> {
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

fn main() -> ExitCode {
    use common::Arg;
    let mut path = None;
    let mut args = common::Args::new(&USAGE);
    while let Some(arg) = args.next() {
        match arg {
            Arg::Opt(opt) => args.unknown_option(&opt),
            Arg::Operand(a) if path.is_none() => path = Some(PathBuf::from(a)),
            Arg::Operand(a) => args.unexpected_argument(&a),
        }
    }
    let Some(path) = path else {
        USAGE.required("PATH")
    };
    // Before any other thread exists: see `answer_sighup_on_a_thread`.
    if let Err(e) = common::answer_sighup_on_a_thread() {
        eprintln!("gpio_watch: {e}");
        return ExitCode::FAILURE;
    }
    match run(path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpio_watch: {e}");
            ExitCode::FAILURE
        }
    }
}
