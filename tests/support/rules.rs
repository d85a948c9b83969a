//! The selector's rules, restated once, independently of the crate, for every model that checks
//! it (the real-fd models in `tests/model.rs`, the fake-backend models of the selector and the
//! event loop, and the fuzz targets that share them): which errors a registration must get
//! before any syscall, and how raw readiness is masked (Python's rule).

use picosel::backend::Backend;
use picosel::{Error, Interest, RawFd, Ready, Selector, SelectorKey};

/// Whether `interest` may be registered: not empty, no unknown bits.
pub fn valid(interest: Interest) -> bool {
    !interest.is_empty() && Interest::all().contains(interest)
}

/// What a registration looks like to the rules, before any syscall.
pub struct Registration {
    pub fd: RawFd,
    pub interest: Interest,
    /// The backend can do the mode asked for.
    pub mode_supported: bool,
    /// The fd is registered already.
    pub registered: bool,
    /// `N` fds are registered.
    pub full: bool,
}

/// The errors `register` must choose from (empty: it must succeed, unless the kernel refuses).
pub fn register_errors(r: &Registration) -> Vec<Error> {
    let mut must = Vec::new();
    if !valid(r.interest) {
        must.push(Error::InvalidInterest);
    }
    if r.fd < 0 {
        must.push(Error::InvalidFd);
    }
    if !r.mode_supported {
        must.push(Error::Unsupported);
    }
    if r.registered {
        must.push(Error::AlreadyRegistered);
    }
    if r.full {
        must.push(Error::Full);
    }
    must
}

/// The errors `modify` must choose from before any syscall.
pub fn modify_errors(registered: bool, interest: Interest, mode_supported: bool) -> Vec<Error> {
    let mut must = Vec::new();
    if !registered {
        must.push(Error::NotRegistered);
    }
    if !valid(interest) {
        must.push(Error::InvalidInterest);
    }
    if !mode_supported {
        must.push(Error::Unsupported);
    }
    must
}

/// Python's rule: READ/WRITE/PRIORITY only as registered; HUP and ERROR fold into every
/// registered READ and WRITE (into PRIORITY when that is all that was registered) and stay
/// visible as their own bits; READ_CLOSED (or a hang-up) shows with READ where READ is
/// registered.
pub fn model_mask(raw: Ready, interest: Interest) -> Ready {
    let mut r = Ready::from_bits_truncate(raw.bits() & interest.bits() & 0b111);
    let trouble = raw & (Ready::HUP | Ready::ERROR);
    if !trouble.is_empty() {
        r |= trouble;
        let rw = interest & (Interest::READ | Interest::WRITE);
        let folded = if rw.is_empty() { interest } else { rw };
        r |= Ready::from_bits_truncate(folded.bits());
    }
    // The end of the stream belongs to READ: shown, with READ, only where READ is registered;
    // a hang-up is one too.
    if interest.contains(Interest::READ) && raw.intersects(Ready::READ_CLOSED | Ready::HUP) {
        r |= Ready::READ | Ready::READ_CLOSED;
    }
    r
}

/// The selector's table is exactly `want` (one key per fd): `len`, `keys()`, and `get_key` of
/// every fd in `probes` (registered or not).
pub fn assert_table<B: Backend, const N: usize>(
    sel: &Selector<B, u32, N>,
    want: &[SelectorKey<u32>],
    probes: impl IntoIterator<Item = RawFd>,
) {
    assert_eq!(sel.len(), want.len(), "len");
    let mut keys: Vec<SelectorKey<u32>> = sel.keys().copied().collect();
    keys.sort_by_key(|k| k.fd());
    let mut sorted = want.to_vec();
    sorted.sort_by_key(|k| k.fd());
    assert_eq!(keys, sorted, "keys()");
    for fd in probes {
        let key = want.iter().find(|k| k.fd() == fd).copied();
        assert_eq!(
            sel.get_key(fd),
            key.ok_or(Error::NotRegistered),
            "get_key({fd})"
        );
    }
}
