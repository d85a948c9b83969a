//! Runs the real example binaries for the `example_*` tests: find the binary, start it with
//! piped stdio, read its output line by line with a deadline, signal it, and always kill it
//! (the [`Example`] guard kills and reaps the process when dropped, also when a test fails).
//!

use rustix::process::{Pid, Signal};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A generous bound for anything a test waits for: only a hung example should ever reach it.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// The path of example `name`, built by `cargo test` next to this test binary.
///
/// A test binary lives in `<target>/<profile>/deps/`; cargo puts examples in
/// `<target>/<profile>/examples/`. Deriving it from the running binary works whatever the
/// target directory is (`CARGO_TARGET_DIR`, `--target`, another profile).
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary is in <target>/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        build_example(name, profile_dir);
    }
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples, or run `cargo build --examples`",
        path.display()
    );
    path
}

/// Builds a missing example, as when a single test is run with `cargo test --test NAME`
/// (cargo then builds no examples). Cargo holds no build-dir lock while tests run, so this
/// does not wait on the `cargo test` that started us.
fn build_example(name: &str, profile_dir: &Path) {
    let (Some(mut target_dir), Some(profile)) = (profile_dir.parent(), profile_dir.file_name())
    else {
        return;
    };
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    // A cross build (`--target TRIPLE`) puts the profile one level down, in
    // `<target>/TRIPLE/<profile>`.
    if let Some(triple) = target_dir.file_name().and_then(|t| t.to_str()) {
        if triple.contains("-linux-") {
            cmd.args(["--target", triple]);
            target_dir = target_dir.parent().unwrap_or(target_dir);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    match profile.to_str() {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => return,
    }
    let _ = cmd.status();
}

/// A running example. Dropping it kills and reaps the process.
pub struct Example {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line taken so far, for failure messages.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<thread::JoinHandle<()>>,
}

impl Example {
    /// Starts example `name` with `args`, stdin/stdout/stderr piped.
    pub fn spawn(name: &str, args: &[&str]) -> Example {
        Self::spawn_cmd(name, Command::new(example_path(name)).args(args))
    }

    /// Starts a prepared command (for extra environment or a shell wrapper).
    pub fn spawn_cmd(name: &str, cmd: &mut Command) -> Example {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches('\n').to_string();
                        if tx.send(text).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let stderr_reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Example {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `data` to the example's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(data).expect("write to the example's stdin");
        stdin.flush().expect("flush the example's stdin");
    }

    /// Closes the example's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line, or `None` at end of output or after `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Some(line)
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Skips stdout lines until one satisfies `pred`, and returns it; fails the test after
    /// [`PATIENCE`] or at end of output, showing what was seen.
    pub fn expect_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "{}: no line {what} ({e:?}); stdout so far: {:#?}; stderr: {}",
                    self.name,
                    self.seen,
                    self.stderr()
                ),
            }
        }
    }

    /// Reads the `listening on ADDR` line the servers print at start.
    pub fn listening_addr(&mut self) -> SocketAddr {
        let line = self.expect_line("`listening on ADDR`", |l| l.starts_with("listening on "));
        line["listening on ".len()..]
            .split([',', ' '])
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or_else(|e| panic!("{}: bad address in {line:?}: {e}", self.name))
    }

    /// Everything written on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: Signal) {
        let pid = Pid::from_raw(self.pid() as i32).expect("pid > 0");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// Waits for the process to exit, failing the test after [`PATIENCE`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit; stdout: {:#?}; stderr: {}",
                self.name,
                self.seen,
                self.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for exit, then returns the status and the rest of stdout; stderr is then
    /// complete too.
    pub fn finish(&mut self) -> (ExitStatus, Vec<String>) {
        let status = self.wait();
        let mut rest = Vec::new();
        while let Some(line) = self.next_line(Duration::from_secs(2)) {
            rest.push(line);
        }
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        (status, rest)
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs example `name` to completion with stdin closed and returns (status, stdout, stderr).
pub fn run_to_end(name: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut ex = Example::spawn(name, args);
    ex.close_stdin();
    let (status, lines) = ex.finish();
    (status, lines.join("\n"), ex.stderr())
}

/// Runs `NAME --help` and `NAME -h`: status 0, nothing on stderr, the same text on stdout,
/// starting with `usage: NAME` and holding each of `wants`. Returns the help.
pub fn assert_help(name: &str, wants: &[&str]) -> String {
    let (status, help, stderr) = run_to_end(name, &["--help"]);
    assert_eq!(status.code(), Some(0), "{name}: {stderr}");
    assert_eq!(stderr, "", "{name}");
    assert!(help.starts_with(&format!("usage: {name}")), "{help}");
    let (status, short, _) = run_to_end(name, &["-h"]);
    assert_eq!(status.code(), Some(0), "{name} -h");
    assert_eq!(short, help, "{name}: -h and --help differ");
    for want in wants {
        assert!(help.contains(want), "{name}: no {want:?} in:\n{help}");
    }
    help
}

/// Each of `command_lines` is a usage error for example `name`: status 2, and the usage on
/// stderr.
pub fn assert_usage_errors(name: &str, command_lines: &[&[&str]]) {
    for args in command_lines {
        let (status, _, stderr) = run_to_end(name, args);
        assert_eq!(status.code(), Some(2), "{name} {args:?}: {stderr}");
        assert!(stderr.contains("usage: "), "{name} {args:?}: {stderr}");
    }
}
