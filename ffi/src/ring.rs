//! Typed single-producer/single-consumer channels over `rte_ring`: how the control thread
//! sends commands to an lcore and gets them back with their outcome, with no lock on the
//! lcore's side. Items travel as `Box<T>` pointers; a ring's leftovers are freed when both
//! ends are gone.

use crate::{raw, DpdkError};
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

struct Ring<T> {
    ptr: NonNull<raw::rte_ring>,
    _t: PhantomData<T>,
}

// SAFETY: the ring is SP/SC and each end is held by one thread (Producer and Consumer are
// not Clone and not Sync); rte_ring is designed for cross-thread use.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: shared only through Arc between exactly one Producer and one Consumer, which use
// the producer and consumer halves of the ring respectively.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let mut obj: *mut c_void = std::ptr::null_mut();
        // SAFETY: both ends are gone (last Arc), so this thread is the only user.
        while unsafe { raw::aves_ring_dequeue(self.ptr.as_ptr(), &mut obj) } == 1 {
            if !obj.is_null() {
                // SAFETY: every pointer in the ring came from Box::into_raw in send.
                drop(unsafe { Box::from_raw(obj.cast::<T>()) });
            }
        }
        // SAFETY: the ring is empty and unused.
        unsafe { raw::rte_ring_free(self.ptr.as_ptr()) };
        crate::object_freed();
    }
}

/// The sending end.
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
}

/// The receiving end.
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
}

impl<T> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Producer")
    }
}
impl<T> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Consumer")
    }
}

/// A channel of capacity `size - 1` (`size` a power of two). Needs EAL.
pub fn channel<T: Send>(name: &str, size: u32) -> Result<(Producer<T>, Consumer<T>), DpdkError> {
    let op = || format!("rte_ring_create({name}, {size})");
    if !size.is_power_of_two() || size < 2 {
        return Err(DpdkError::invalid(op(), "size must be a power of two >= 2"));
    }
    let c = CString::new(name).map_err(|_| DpdkError::invalid(op(), "NUL in name"))?;
    let flags = raw::RING_F_SP_ENQ | raw::RING_F_SC_DEQ;
    // SAFETY: c is a valid C string; SOCKET_ID_ANY is -1.
    let p = unsafe { raw::rte_ring_create(c.as_ptr(), size, -1, flags) };
    let ptr = NonNull::new(p).ok_or_else(|| DpdkError::last(op()))?;
    crate::object_created();
    let ring = Arc::new(Ring {
        ptr,
        _t: PhantomData,
    });
    Ok((
        Producer {
            ring: Arc::clone(&ring),
        },
        Consumer { ring },
    ))
}

impl<T: Send> Producer<T> {
    /// Sends `item`; gives it back when the ring is full.
    pub fn send(&mut self, item: Box<T>) -> Result<(), Box<T>> {
        let p = Box::into_raw(item);
        // SAFETY: single producer (we hold &mut self); the ring stores the pointer.
        let n = unsafe { raw::aves_ring_enqueue(self.ring.ptr.as_ptr(), p.cast()) };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: the ring did not take p, so we still own it.
            Err(unsafe { Box::from_raw(p) })
        }
    }
}

impl<T: Send> Consumer<T> {
    /// Takes the next item, if any.
    pub fn recv(&mut self) -> Option<Box<T>> {
        let mut obj: *mut c_void = std::ptr::null_mut();
        // SAFETY: single consumer (we hold &mut self); obj is a valid out-pointer.
        let n = unsafe { raw::aves_ring_dequeue(self.ring.ptr.as_ptr(), &mut obj) };
        if n == 1 && !obj.is_null() {
            // SAFETY: the pointer came from Box::into_raw in Producer::send.
            Some(unsafe { Box::from_raw(obj.cast::<T>()) })
        } else {
            None
        }
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        // SAFETY: a read of the ring's indices.
        unsafe { raw::aves_ring_count(self.ring.ptr.as_ptr()) as usize }
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
