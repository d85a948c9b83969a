//! GPIO through the character device (`/dev/gpiochipN`, the GPIO v2 interface of Linux 5.10
//! and later): request one line as an input with edge detection, then read the kernel's edge
//! event records from the request's fd whenever the selector reports it readable.
//!
//! The only `unsafe` of the example is [`request_line`]: the ioctl, and taking ownership of
//! the fd it returns. Decoding is [`crate::gpio_v2::decode`], a pure function; [`Records`]
//! keeps a record cut short by a read for the next one (the kernel never cuts one, a pipe
//! standing in for it in the tests may); [`watch`] is the loop.

use crate::gpio_v2::{self, Bias, Edge, Edges, LineRequest, EVENT_SIZE};
use picosel::{DefaultSelector, Interest};
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::io::Errno;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// The label `gpioinfo` shows for a line this program holds.
pub const CONSUMER: &str = "gpio_watch";

/// The chip device for `--chip`: a path as it is, or a chip's name (`gpiochip0`) or number
/// (`0`) in `/dev`.
pub fn chip_path(arg: &str) -> std::path::PathBuf {
    if arg.contains('/') {
        arg.into()
    } else if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        format!("/dev/gpiochip{arg}").into()
    } else {
        Path::new("/dev").join(arg)
    }
}

/// Opens the chip. Reading is all the line request needs.
pub fn open_chip(chip: &Path) -> Result<File, String> {
    File::open(chip).map_err(|e| {
        let c = chip.display();
        match e.kind() {
            io::ErrorKind::NotFound => format!(
                "{c}: no such GPIO chip; `ls /dev/gpiochip*` lists them (on a Raspberry Pi \
                 the header's GPIOs are lines of gpiochip0)"
            ),
            io::ErrorKind::PermissionDenied => format!(
                "{c}: permission denied. Run as root, or add your user to the group that owns \
                 it (on Raspberry Pi OS: sudo usermod -aG gpio $USER, then log in again)"
            ),
            _ => format!("{c}: {e}"),
        }
    })
}

/// Hands `req` to the kernel with `GPIO_V2_GET_LINE_IOCTL` and returns the line request's fd
/// (close-on-exec, as the kernel makes it), from which edge events are read.
///
/// This is the example's only `unsafe`.
#[allow(unsafe_code)]
pub fn request_line(chip: BorrowedFd<'_>, req: &mut LineRequest) -> Result<OwnedFd, Errno> {
    // The kernel ignores this field on the way in; a number that cannot be an fd means that
    // nothing is taken over below unless the kernel wrote one.
    req.fd = -1;
    // SAFETY: `GET_LINE_IOCTL` is `_IOWR(0xB4, 0x07, struct gpio_v2_line_request)` and
    // `LineRequest` is that struct: `#[repr(C)]`, with the header's size and offsets (checked
    // at compile time in gpio_v2.rs, and against linux/gpio.h by tests/gpio_abi.rs). The
    // kernel reads and writes only those 592 bytes, through a pointer to `*req`, which is
    // exclusively borrowed for the call, and keeps no pointer to it afterwards.
    unsafe {
        let ioctl = rustix::ioctl::Updater::<{ gpio_v2::GET_LINE_IOCTL }, LineRequest>::new(req);
        rustix::ioctl::ioctl(chip, ioctl)?;
    }
    if req.fd < 0 {
        // A kernel that succeeds always writes one.
        return Err(Errno::BADF);
    }
    // SAFETY: on success the kernel has installed a new fd in this process and written its
    // number into `req.fd`; nothing else owns it, so the `OwnedFd` becomes its only owner
    // and closes it when dropped.
    Ok(unsafe { OwnedFd::from_raw_fd(req.fd) })
}

/// Opens `chip` and requests line `line` as an input with the given edges, pull resistor and
/// debounce period; the error says what to do about it.
pub fn request(
    chip: &Path,
    line: u32,
    edges: Edges,
    bias: Bias,
    debounce_us: u32,
) -> Result<OwnedFd, String> {
    let file = open_chip(chip)?;
    let mut req = gpio_v2::line_request(line, edges, bias, debounce_us, CONSUMER);
    request_line(file.as_fd(), &mut req).map_err(|e| request_error(chip, line, e))
    // `file` closes here; the line request lives on in its own fd.
}

/// What the kernel's answer to the line request means, and what to do about it.
pub fn request_error(chip: &Path, line: u32, e: Errno) -> String {
    let c = chip.display();
    match e {
        Errno::NOTTY => format!(
            "{c} is not a GPIO character device (or the kernel predates the GPIO v2 \
             interface of Linux 5.10); `ls /dev/gpiochip*` lists the chips"
        ),
        Errno::INVAL => format!(
            "{c}: line {line} cannot be requested with these settings (no such line, or a \
             setting the chip refuses); `gpioinfo` lists every chip's lines"
        ),
        Errno::BUSY => format!(
            "{c}: line {line} is in use (`gpioinfo` names its user); a line exported \
             through sysfs is in use too: echo N > /sys/class/gpio/unexport"
        ),
        Errno::NOSYS => format!(
            "{c}: GPIO ioctls are not available here (ENOSYS: an emulator such as qemu-user \
             passes none to the kernel)"
        ),
        Errno::ACCESS | Errno::PERM => format!(
            "{c}: line {line}: permission denied; run as root, or as a user in the gpio group"
        ),
        e => format!("{c}: line {line}: {e}"),
    }
}

/// Room for this many records per read: the kernel's default event buffer for one line.
pub const RECORDS_PER_READ: usize = 16;

/// Bytes read from a line request, cut into whole records. A record split between two reads
/// (which the kernel never does, and a pipe may) waits for the rest at the front of the
/// buffer; the buffer is fixed, as everything in the loop.
pub struct Records {
    buf: [u8; RECORDS_PER_READ * EVENT_SIZE],
    len: usize,
}

impl Default for Records {
    fn default() -> Self {
        Self::new()
    }
}

impl Records {
    /// An empty buffer.
    pub const fn new() -> Records {
        Records {
            buf: [0; RECORDS_PER_READ * EVENT_SIZE],
            len: 0,
        }
    }

    /// Lets `read` fill the free part of the buffer once and returns what it returned; `Ok(0)`
    /// is the end of input. There is always room for 15 whole records or more.
    pub fn fill<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let n = read(&mut self.buf[self.len..])?;
        self.len += n.min(self.buf.len() - self.len);
        Ok(n)
    }

    /// Decodes every whole record held, in order, and keeps the bytes of a partial one.
    pub fn drain(&mut self, mut each: impl FnMut(Edge)) {
        let whole = self.len / EVENT_SIZE * EVENT_SIZE;
        for chunk in self.buf[..whole].chunks_exact(EVENT_SIZE) {
            let mut record = [0u8; EVENT_SIZE];
            record.copy_from_slice(chunk);
            each(gpio_v2::decode(&record));
        }
        self.buf.copy_within(whole..self.len, 0);
        self.len -= whole;
    }

    /// The bytes of a record not yet complete.
    pub fn partial(&self) -> usize {
        self.len
    }
}

/// Tells edges lost between two events from the line's sequence numbers, which start at 1
/// and go up by one per edge, including edges the kernel dropped from a full buffer.
#[derive(Debug)]
pub struct Sequence {
    next: u32,
}

impl Default for Sequence {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequence {
    /// Before the first event.
    pub const fn new() -> Sequence {
        Sequence { next: 1 }
    }

    /// How many edges were lost before the one numbered `seq`. A number that goes back
    /// (which the kernel never sends) counts as none lost.
    pub fn missed_before(&mut self, seq: u32) -> u32 {
        let missed = seq.wrapping_sub(self.next);
        self.next = seq.wrapping_add(1);
        if missed > u32::MAX / 2 {
            0
        } else {
            missed
        }
    }
}

/// How a watch ended: its input ended, which a real line request never does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ended {
    /// Events printed.
    pub events: u64,
    /// Edges the kernel dropped (gaps in the sequence numbers).
    pub missed: u64,
    /// Bytes of a last record cut short (0: none).
    pub partial: usize,
}

/// Watches the line request `fd`: registers it for READ on a selector and, whenever it is
/// readable, reads once (up to 16 records), and writes one line per event on `out`:
/// `edge rising line 17 seq 3 at 123.456789 s`, and `missed 2 edges before seq 5 (...)` when
/// the sequence numbers show that the kernel dropped some. Returns at the end of input (a
/// pipe standing in for the request, in the tests); a real request only ends with an error.
pub fn watch(fd: BorrowedFd<'_>, out: &mut impl Write) -> Result<Ended, String> {
    let mut sel = DefaultSelector::<(), 1>::new();
    sel.register(fd, Interest::READ, ())
        .map_err(|e| format!("cannot watch the line request: {e}"))?;
    let mut records = Records::new();
    let mut seq = Sequence::new();
    let mut ended = Ended::default();
    loop {
        // One registration: an event means it; none (EINTR) means wait again.
        if sel
            .select(None)
            .map_err(|e| format!("select: {e}"))?
            .count()
            == 0
        {
            continue;
        }
        match records.fill(|buf| rustix::io::read(fd, buf)) {
            Ok(0) => {
                ended.partial = records.partial();
                return Ok(ended);
            }
            Ok(_) => {}
            Err(Errno::AGAIN | Errno::INTR) => continue,
            Err(Errno::NODEV) => {
                return Err("the GPIO chip is gone (unplugged, or its driver unloaded)".to_string())
            }
            Err(e) => return Err(format!("reading edge events: {e}")),
        }
        let mut written = Ok(());
        records.drain(|edge| {
            let missed = seq.missed_before(edge.seq);
            ended.events += 1;
            ended.missed += u64::from(missed);
            if written.is_ok() && missed > 0 {
                written = writeln!(
                    out,
                    "missed {missed} edge{} before seq {} (the kernel's event buffer was full)",
                    if missed == 1 { "" } else { "s" },
                    edge.seq
                );
            }
            if written.is_ok() {
                written = writeln!(out, "{edge}");
            }
        });
        written.map_err(|e| format!("stdout: {e}"))?;
    }
}
