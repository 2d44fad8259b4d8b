//! `dpdk-sys`: aves's bindings to the system DPDK 22.11 LTS and thin safe wrappers.
//!
//! - [`raw`]: bindgen output (allowlisted) plus the `aves_*` C shim that exports DPDK's
//!   static-inline fast-path functions (rx/tx burst, mbuf ops, ring ops, lcore id, TSC).
//! - Safe wrappers: [`Eal`] (init, lcores, launch/wait, cleanup), [`Port`] (configure,
//!   start/stop/close, link, stats, xstats, MAC, per-queue handles [`RxQueue`]/[`TxQueue`];
//!   [`port_stats`] and [`port_link`] read any port's counters from any thread),
//!   [`Mempool`], the owning [`Mbuf`] (frees on drop), [`Burst`] (a 32-slot array of
//!   owned mbufs), and [`ring`] (typed single-producer/single-consumer channels).
//!
//! This is the only crate of the workspace with `unsafe`; every block says why it is
//! sound in a `// SAFETY:` comment. Invariants the wrappers keep:
//! - EAL is initialised at most once per process ([`Eal::init`] fails the second time),
//!   and every wrapper that needs EAL is reachable only through an [`Eal`] or a value
//!   made after it.
//! - An [`Mbuf`] or a pointer in a [`Burst`] is owned exactly once; dropping frees it.
//! - A queue handle is handed out once per (port, queue), so two threads never poll the
//!   same queue (DPDK queues are not thread-safe).

pub mod mb;
pub mod raw;
pub mod ring;

mod eal;
mod mbuf;
mod port;

pub use eal::{lcore_id, tsc, tsc_hz, Eal};
pub use mbuf::{Burst, Mbuf, Mempool, BURST_SIZE};
pub use port::{port_link, port_stats, LinkStatus, Port, PortConf, PortStats, RxQueue, TxQueue};

use std::ffi::CStr;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// DPDK objects (mempools, rings) alive now. [`Eal::cleanup`] refuses to run while any
/// is, because cleanup frees their memory under them.
static LIVE_OBJECTS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn object_created() {
    LIVE_OBJECTS.fetch_add(1, Ordering::SeqCst);
}

pub(crate) fn object_freed() {
    LIVE_OBJECTS.fetch_sub(1, Ordering::SeqCst);
}

pub(crate) fn live_objects() -> usize {
    LIVE_OBJECTS.load(Ordering::SeqCst)
}

/// A DPDK call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkError {
    /// What was being done, e.g. `rte_eth_dev_configure(port 0)`.
    pub op: String,
    /// The (positive) errno DPDK reported.
    pub errno: i32,
    /// `rte_strerror(errno)`.
    pub msg: String,
}

impl DpdkError {
    /// An error for `op` with `errno` (sign ignored), its text from `rte_strerror`.
    pub fn new(op: impl Into<String>, errno: i32) -> DpdkError {
        let errno = errno.saturating_abs();
        DpdkError {
            op: op.into(),
            errno,
            msg: strerror(errno),
        }
    }

    /// An error for `op` from the current `rte_errno`.
    pub fn last(op: impl Into<String>) -> DpdkError {
        // SAFETY: aves_errno reads the calling thread's rte_errno (a thread-local).
        let e = unsafe { raw::aves_errno() };
        DpdkError::new(op, e)
    }

    /// An error that did not come from DPDK (bad argument caught here).
    pub fn invalid(op: impl Into<String>, msg: impl Into<String>) -> DpdkError {
        DpdkError {
            op: op.into(),
            errno: libc::EINVAL,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (errno {})", self.op, self.msg, self.errno)
    }
}

impl std::error::Error for DpdkError {}

fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
    // string for any errno value; we copy it at once.
    let p = unsafe { raw::rte_strerror(errno) };
    if p.is_null() {
        return format!("errno {errno}");
    }
    // SAFETY: p is non-null and NUL-terminated (see above).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Checks a DPDK return code: negative (or, with `errno_on_neg1`, -1 + rte_errno) is an error.
pub(crate) fn check(op: impl FnOnce() -> String, rc: i32) -> Result<i32, DpdkError> {
    if rc < 0 {
        Err(DpdkError::new(op(), rc))
    } else {
        Ok(rc)
    }
}
