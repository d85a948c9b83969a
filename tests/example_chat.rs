//! `chat_server` and `chat_client` run as a user runs them: a server, three clients, and lines
//! typed on every stdin; each line must reach exactly the right peers.

mod support;

use std::collections::BTreeSet;
use support::examples::Example;

/// Reads a client's stdout up to the `server: end` marker; returns the lines before it.
fn received_until_end(client: &mut Example) -> BTreeSet<String> {
    let mut got = BTreeSet::new();
    loop {
        let line = client.expect_line("from the chat", |_| true);
        if line == "server: end" {
            return got;
        }
        assert!(got.insert(line.clone()), "line received twice: {line:?}");
    }
}

/// The message part of a relayed `FROM: TEXT` line.
fn texts(lines: &BTreeSet<String>) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| match l.strip_prefix("server: ") {
            Some(text) => format!("server says {text}"),
            None => l.split_once(": ").map_or(l.clone(), |(_, t)| t.to_string()),
        })
        .collect()
}

#[test]
fn three_clients_and_the_operator_each_line_reaches_exactly_the_right_peers() {
    let mut server = Example::spawn("chat_server", &["127.0.0.1:0"]);
    let addr = server.listening_addr().to_string();
    let mut clients: Vec<Example> = Vec::new();
    for _ in 0..3 {
        clients.push(Example::spawn("chat_client", &[&addr]));
        // Registered on the server before anyone speaks, so no line is missed.
        server.expect_line("`ADDR connected`", |l| l.ends_with(" connected"));
    }

    let names = ["alice", "bob", "carol"];
    for (c, name) in clients.iter_mut().zip(names) {
        c.write_stdin(format!("hello from {name}\nbye from {name}\n").as_bytes());
    }
    // The server prints each client line as it relays it: six lines.
    for _ in 0..6 {
        server.expect_line("a relayed client line", |l| l.contains(" from "));
    }
    server.write_stdin(b"from the operator\n");
    server.write_stdin(b"end\n");

    for (c, me) in clients.iter_mut().zip(names) {
        let got = texts(&received_until_end(c));
        let mut want: BTreeSet<String> = names
            .iter()
            .filter(|&&n| n != me)
            .flat_map(|n| [format!("hello from {n}"), format!("bye from {n}")])
            .collect();
        want.insert("server says from the operator".to_string());
        assert_eq!(got, want, "{me} got the wrong lines");
    }

    // End of input ends a client, with status 0.
    clients[0].close_stdin();
    let (status, _) = clients[0].finish();
    assert!(status.success(), "chat_client exit: {status}");
    server.expect_line("the client leaving", |l| l.ends_with(" disconnected"));

    // The server going away ends the others.
    drop(server);
    for c in &mut clients[1..] {
        let (status, _) = c.finish();
        assert!(status.success(), "chat_client exit: {status}");
        assert!(
            c.stderr().contains("closed by the server"),
            "{}",
            c.stderr()
        );
    }
}

#[test]
fn a_line_split_across_writes_is_relayed_whole() {
    let mut server = Example::spawn("chat_server", &["127.0.0.1:0"]);
    let addr = server.listening_addr().to_string();
    let mut a = Example::spawn("chat_client", &[&addr]);
    server.expect_line("`ADDR connected`", |l| l.ends_with(" connected"));
    let mut b = Example::spawn("chat_client", &[&addr]);
    server.expect_line("`ADDR connected`", |l| l.ends_with(" connected"));

    a.write_stdin(b"half a ");
    std::thread::sleep(std::time::Duration::from_millis(100));
    a.write_stdin(b"line\n");
    let line = b.expect_line("the joined line", |_| true);
    assert!(line.ends_with(": half a line"), "{line:?}");
}

/// The README's first commands: `echo_server`, and `chat_client` talking to it.
#[test]
fn chat_client_talks_to_the_echo_server() {
    let mut server = Example::spawn("echo_server", &["127.0.0.1:0"]);
    let addr = server.listening_addr().to_string();
    let mut client = Example::spawn("chat_client", &[&addr]);
    client.write_stdin(b"hello, picosel\n");
    assert_eq!(client.expect_line("the echo", |_| true), "hello, picosel");
    client.close_stdin();
    let (status, _) = client.finish();
    assert!(status.success(), "chat_client exit: {status}");
    server.expect_line("the client leaving", |l| l.ends_with(" disconnected"));
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    for (name, args) in [
        ("chat_server", &["not-an-address"][..]),
        ("chat_client", &["127.0.0.1:1", "extra"][..]),
    ] {
        let (status, _, stderr) = support::examples::run_to_end(name, args);
        assert_eq!(status.code(), Some(2), "{name} {args:?}: {stderr}");
        assert!(stderr.contains("usage:"), "{name}: {stderr}");
    }
}

/// What the server prints on SIGHUP: it has no config file to reload.
const NOTHING_TO_RELOAD: &str = "SIGHUP: nothing to reload (no config file); still running";

#[test]
fn help_states_the_defaults_and_exits_zero() {
    for (name, wants) in [
        (
            "chat_server",
            &[
                "(default: 127.0.0.1:8800)",
                "IP:PORT, localhost:PORT or PORT",
                "port 0 picks a free port",
                "epoll, 34 registrations (32 clients",
                "SIGHUP: nothing to reload",
            ][..],
        ),
        (
            "chat_client",
            &[
                "(default: 127.0.0.1:8800)",
                "IP:PORT, localhost:PORT or PORT",
                "epoll, 2 registrations",
            ][..],
        ),
    ] {
        let help = support::examples::assert_help(name, wants);
        assert!(
            help.starts_with(&format!("usage: {name} [ADDR]\n")),
            "{help}"
        );
    }
}

/// The server on a bare port (0: a free one, on 127.0.0.1); one client given the bare port,
/// one given `localhost:PORT`; a line from each reaches the other.
#[test]
fn a_bare_port_and_localhost_port_work_for_server_and_client() {
    let mut server = Example::spawn("chat_server", &["0"]);
    let addr = server.listening_addr();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    let mut a = Example::spawn("chat_client", &[&addr.port().to_string()]);
    server.expect_line("`ADDR connected`", |l| l.ends_with(" connected"));
    let mut b = Example::spawn("chat_client", &[&format!("localhost:{}", addr.port())]);
    server.expect_line("`ADDR connected`", |l| l.ends_with(" connected"));
    a.write_stdin(b"from a\n");
    let line = b.expect_line("a's line", |_| true);
    assert!(
        line.starts_with("127.0.0.1:") && line.ends_with(": from a"),
        "{line:?}"
    );
    b.write_stdin(b"from b\n");
    let line = a.expect_line("b's line", |_| true);
    assert!(
        line.starts_with("127.0.0.1:") && line.ends_with(": from b"),
        "{line:?}"
    );
}

#[test]
fn the_client_refuses_port_zero_and_names_what_it_takes() {
    for arg in ["0", "localhost:0", "127.0.0.1:0"] {
        let (status, _, stderr) = support::examples::run_to_end("chat_client", &[arg]);
        assert_eq!(status.code(), Some(2), "{arg}: {stderr}");
        assert!(
            stderr.starts_with(
                "chat_client: ADDR: not accepted: \"127.0.0.1:0\" (use the server's port, not 0)\n\
                 usage: chat_client [ADDR]\n"
            ),
            "{arg}: {stderr}"
        );
    }
}

/// SIGHUP asks a daemon to reload its configuration; the chat server has none, so it says so
/// and its clients keep talking.
#[test]
fn sighup_says_nothing_to_reload_and_the_room_goes_on() {
    let mut server = Example::spawn("chat_server", &["127.0.0.1:0"]);
    let addr = server.listening_addr().to_string();
    let mut a = Example::spawn("chat_client", &[&addr]);
    server.expect_line("`ADDR connected`", |l| l.ends_with(" connected"));
    for _ in 0..2 {
        server.signal(rustix::process::Signal::HUP);
        server.expect_line("the SIGHUP line", |l| l == NOTHING_TO_RELOAD);
    }
    let mut b = Example::spawn("chat_client", &[&addr]);
    server.expect_line("`ADDR connected`", |l| l.ends_with(" connected"));
    a.write_stdin(b"still here\n");
    let line = b.expect_line("a's line", |_| true);
    assert!(line.ends_with(": still here"), "{line:?}");
    // SIGTERM still ends it (by its default action: this server has no clean exit).
    server.signal(rustix::process::Signal::TERM);
    let (status, _) = server.finish();
    assert!(!status.success(), "{status}");
}
