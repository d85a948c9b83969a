//! `Notifier::from_env()` reads the three variables of the service manager's protocol. One
//! test in a binary of its own: it sets the process's environment, which no other thread of
//! this binary reads meanwhile.

use picosel::{Errno, Error, Notifier};
use picosel_std::NotifierEnvExt as _;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

#[test]
fn from_env_follows_the_variables() {
    let name = format!("picosel-std-from-env-{}", std::process::id());
    let manager = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap())
        .expect("an abstract socket for the manager");
    let me = std::process::id().to_string();

    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        std::env::remove_var(var);
    }
    let n = Notifier::from_env().unwrap();
    assert!(!n.is_enabled(), "no $NOTIFY_SOCKET: disabled");
    assert_eq!(n.ready(), Ok(()));

    std::env::set_var("NOTIFY_SOCKET", format!("@{name}"));
    std::env::set_var("WATCHDOG_USEC", "2000000");
    std::env::set_var("WATCHDOG_PID", &me);
    let n = Notifier::from_env().unwrap();
    assert!(n.is_enabled());
    assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(2)));
    n.ready().unwrap();
    let mut buf = [0u8; 64];
    let len = manager.recv(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"READY=1");

    // The keep-alives are another process's: no watchdog here.
    std::env::set_var("WATCHDOG_PID", "1");
    let n = Notifier::from_env().unwrap();
    assert!(n.is_enabled());
    assert_eq!(n.watchdog_interval(), None);

    // Malformed: `from_vars`'s error, as libsystemd answers.
    std::env::set_var("WATCHDOG_PID", &me);
    std::env::set_var("WATCHDOG_USEC", "2s");
    assert_eq!(Notifier::from_env().unwrap_err(), Error::Os(Errno::INVAL));
}
