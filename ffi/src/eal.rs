//! EAL: initialisation, lcores, launching closures on lcores, cleanup, TSC.

use crate::{raw, DpdkError};
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// The initialised Environment Abstraction Layer. One per process.
#[derive(Debug)]
pub struct Eal {
    // Not Send/Sync on purpose: launch and wait must come from the main lcore.
    _not_send: std::marker::PhantomData<*const ()>,
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Box<Job>` leaked by `Eal::launch` for exactly this call; DPDK
    // passes it back once, so we reclaim ownership once.
    let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
    // A panic must not unwind into C.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

impl Eal {
    /// Initialises EAL from an argument list (the first item is the program name, as in
    /// `argv`). Fails if EAL was already initialised in this process.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::invalid(
                "rte_eal_init",
                "EAL is already initialised in this process",
            ));
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        if args.is_empty() {
            owned.push(CString::new("aves").expect("static string has no NUL"));
        }
        for a in args {
            owned.push(CString::new(a.as_ref()).map_err(|_| {
                DpdkError::invalid("rte_eal_init", "an EAL argument contains a NUL byte")
            })?);
        }
        // DPDK may permute argv; give it its own array of pointers (kept alive by `owned`).
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr().cast_mut()).collect();
        // SAFETY: argv holds argc valid NUL-terminated strings that outlive the call; EAL
        // only reads them and may reorder the pointer array, which we own.
        let rc = unsafe { raw::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if rc < 0 {
            INITIALISED.store(false, Ordering::SeqCst);
            return Err(DpdkError::last("rte_eal_init"));
        }
        Ok(Eal {
            _not_send: std::marker::PhantomData,
        })
    }

    /// The main lcore (the thread that called `init`).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised (we hold an Eal).
        unsafe { raw::rte_get_main_lcore() }
    }

    /// Enabled worker lcores, in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i: u32 = u32::MAX; // -1: start from the first
        loop {
            // SAFETY: EAL is initialised; rte_get_next_lcore is a pure query. skip_main=1, wrap=0.
            i = unsafe { raw::rte_get_next_lcore(i, 1, 0) };
            if i >= raw::RTE_MAX_LCORE {
                break;
            }
            out.push(i);
        }
        out
    }

    /// Number of enabled lcores (main + workers).
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: EAL is initialised.
        unsafe { raw::rte_lcore_count() }
    }

    /// The CPU an lcore is pinned to, if known.
    pub fn lcore_cpu(&self, lcore: u32) -> Option<usize> {
        if lcore >= raw::RTE_MAX_LCORE {
            return None;
        }
        // SAFETY: lcore is in range; a pure query.
        let cpu = unsafe { raw::rte_lcore_to_cpu_id(lcore as c_int) };
        usize::try_from(cpu).ok()
    }

    /// Number of available ethdev ports.
    pub fn port_count(&self) -> u16 {
        // SAFETY: EAL is initialised.
        unsafe { raw::rte_eth_dev_count_avail() }
    }

    /// The port id of a device by its DPDK name (e.g. `net_af_packet0`, `0000:01:00.0`).
    pub fn port_by_name(&self, name: &str) -> Result<u16, DpdkError> {
        let op = || format!("rte_eth_dev_get_port_by_name({name})");
        let c = CString::new(name).map_err(|_| DpdkError::invalid(op(), "NUL in name"))?;
        let mut id: u16 = 0;
        // SAFETY: c is a valid C string, id a valid out-pointer.
        let rc = unsafe { raw::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        crate::check(op, rc)?;
        Ok(id)
    }

    /// Runs `f` on worker lcore `lcore`; its return value comes back from [`Eal::wait_all`].
    pub fn launch<F>(&self, lcore: u32, f: F) -> Result<(), DpdkError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        let job: Box<Job> = Box::new(Box::new(f));
        let arg = Box::into_raw(job).cast::<c_void>();
        // SAFETY: trampoline matches lcore_function_t; arg is a leaked Box<Job> that the
        // trampoline reclaims. On failure DPDK did not take it, so we reclaim it here.
        let rc = unsafe { raw::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc < 0 {
            // SAFETY: the launch failed, so arg was not handed to any lcore.
            drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
            return Err(DpdkError::new(
                format!("rte_eal_remote_launch(lcore {lcore})"),
                rc,
            ));
        }
        Ok(())
    }

    /// Waits for every worker lcore; returns (lcore, return value) of each.
    pub fn wait_all(&self) -> Vec<(u32, i32)> {
        self.worker_lcores()
            .into_iter()
            .map(|l| {
                // SAFETY: l is an enabled worker lcore; waiting on an idle one returns 0.
                let rc = unsafe { raw::rte_eal_wait_lcore(l) };
                (l, rc)
            })
            .collect()
    }

    /// Releases EAL resources (hugepages, runtime files). Call after every port is closed
    /// and every lcore has returned. EAL cannot be initialised again in this process.
    ///
    /// Refuses (and leaves EAL up, leaking it safely) while a mempool or ring made by
    /// this crate is still alive, since cleanup would free its memory under it.
    pub fn cleanup(self) -> Result<(), DpdkError> {
        let live = crate::live_objects();
        if live > 0 {
            return Err(DpdkError::invalid(
                "rte_eal_cleanup",
                format!("{live} mempool(s)/ring(s) still alive (or a pool with mbufs out); not cleaning up"),
            ));
        }
        // SAFETY: consumes the Eal; callers have stopped lcores and closed ports.
        let rc = unsafe { raw::rte_eal_cleanup() };
        crate::check(|| "rte_eal_cleanup".into(), rc).map(|_| ())
    }
}

/// The calling thread's lcore id (`u32::MAX` on a non-EAL thread).
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local.
    unsafe { raw::aves_lcore_id() }
}

/// The time-stamp counter (`rte_rdtsc`: the `rdtsc` instruction, inlined here on
/// x86-64 where a call into the shim per burst was visible in profiles).
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc has no preconditions (x86-64 always has it).
    let t = unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: rdtsc has no preconditions.
    let t = unsafe { raw::aves_rdtsc() };
    t
}

/// TSC ticks per second (EAL measures it at init; 0 before).
pub fn tsc_hz() -> u64 {
    // SAFETY: a pure query of a value set at EAL init.
    unsafe { raw::rte_get_tsc_hz() }
}
