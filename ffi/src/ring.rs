//! Typed single-producer/single-consumer channels over `rte_ring`: how the control thread
//! sends commands to an lcore and gets them back with their outcome, with no lock on the
//! lcore's side. Items travel as `Box<T>` pointers; a ring's leftovers are freed when both
//! ends are gone.

use crate::{raw, DpdkError, Mbuf};
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

/// A ring carrying values of a small `Copy` type by value (`rte_ring_create_elem`): no
/// allocation on either side. `size_of::<T>()` must be a non-zero multiple of 4 bytes.
struct ValueRing<T> {
    ptr: NonNull<raw::rte_ring>,
    _t: PhantomData<T>,
}

// SAFETY: as for Ring: SP/SC, one thread per end.
unsafe impl<T: Send> Send for ValueRing<T> {}
// SAFETY: as for Ring: the two ends use disjoint halves of the ring.
unsafe impl<T: Send> Sync for ValueRing<T> {}

impl<T> Drop for ValueRing<T> {
    fn drop(&mut self) {
        // SAFETY: both ends are gone; values are Copy, nothing to free inside.
        unsafe { raw::rte_ring_free(self.ptr.as_ptr()) };
        crate::object_freed();
    }
}

/// Sending end of a [`value_channel`].
pub struct ValueProducer<T> {
    ring: Arc<ValueRing<T>>,
}

/// Receiving end of a [`value_channel`].
pub struct ValueConsumer<T> {
    ring: Arc<ValueRing<T>>,
}

impl<T> std::fmt::Debug for ValueProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueProducer")
    }
}
impl<T> std::fmt::Debug for ValueConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ValueConsumer")
    }
}

/// A by-value channel of capacity `size - 1` (`size` a power of two). Needs EAL.
pub fn value_channel<T: Copy + Send>(
    name: &str,
    size: u32,
) -> Result<(ValueProducer<T>, ValueConsumer<T>), DpdkError> {
    let op = || format!("rte_ring_create_elem({name}, {size})");
    let esize = std::mem::size_of::<T>();
    if esize == 0 || !esize.is_multiple_of(4) {
        return Err(DpdkError::invalid(
            op(),
            "element size must be a non-zero multiple of 4",
        ));
    }
    if !size.is_power_of_two() || size < 2 {
        return Err(DpdkError::invalid(op(), "size must be a power of two >= 2"));
    }
    let c = CString::new(name).map_err(|_| DpdkError::invalid(op(), "NUL in name"))?;
    let flags = raw::RING_F_SP_ENQ | raw::RING_F_SC_DEQ;
    // SAFETY: c is a valid C string; esize is a multiple of 4 as DPDK requires.
    let p = unsafe { raw::rte_ring_create_elem(c.as_ptr(), esize as u32, size, -1, flags) };
    let ptr = NonNull::new(p).ok_or_else(|| DpdkError::last(op()))?;
    crate::object_created();
    let ring = Arc::new(ValueRing {
        ptr,
        _t: PhantomData,
    });
    Ok((
        ValueProducer {
            ring: Arc::clone(&ring),
        },
        ValueConsumer { ring },
    ))
}

impl<T: Copy + Send> ValueProducer<T> {
    /// Sends a copy of `v`; gives it back when the ring is full.
    pub fn send(&mut self, v: T) -> Result<(), T> {
        let mut tmp = v;
        // SAFETY: single producer (&mut self); the ring was created with element size
        // size_of::<T>() and copies that many bytes from &tmp.
        let rc = unsafe {
            raw::aves_ring_enqueue_elem(
                self.ring.ptr.as_ptr(),
                (&mut tmp as *mut T).cast(),
                std::mem::size_of::<T>() as u32,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(v)
        }
    }
}

impl<T: Copy + Send> ValueConsumer<T> {
    /// Takes the next value, if any.
    pub fn recv(&mut self) -> Option<T> {
        let mut out = std::mem::MaybeUninit::<T>::uninit();
        // SAFETY: single consumer (&mut self); on success DPDK writes exactly
        // size_of::<T>() bytes, all of which came from a valid T sent by the producer.
        let rc = unsafe {
            raw::aves_ring_dequeue_elem(
                self.ring.ptr.as_ptr(),
                out.as_mut_ptr().cast(),
                std::mem::size_of::<T>() as u32,
            )
        };
        if rc == 0 {
            // SAFETY: initialised by the successful dequeue above.
            Some(unsafe { out.assume_init() })
        } else {
            None
        }
    }
}

/// A ring of owned mbufs between two lcores (a handoff): no allocation, no lock.
struct MbufRing {
    ptr: NonNull<raw::rte_ring>,
}

// SAFETY: SP/SC, one thread per end, as for Ring.
unsafe impl Send for MbufRing {}
// SAFETY: the two ends use disjoint halves of the ring.
unsafe impl Sync for MbufRing {}

impl Drop for MbufRing {
    fn drop(&mut self) {
        let mut obj: *mut c_void = std::ptr::null_mut();
        // SAFETY: both ends are gone; every pointer in the ring is an owned mbuf.
        while unsafe { raw::aves_ring_dequeue(self.ptr.as_ptr(), &mut obj) } == 1 {
            if let Some(p) = NonNull::new(obj.cast::<raw::rte_mbuf>()) {
                // SAFETY: owned mbuf taken out of the ring; dropping frees it.
                drop(unsafe { Mbuf::from_raw(p) });
            }
        }
        // SAFETY: the ring is empty and unused.
        unsafe { raw::rte_ring_free(self.ptr.as_ptr()) };
        crate::object_freed();
    }
}

/// Sending end of an [`mbuf_channel`].
pub struct MbufProducer {
    ring: Arc<MbufRing>,
}

/// Receiving end of an [`mbuf_channel`].
pub struct MbufConsumer {
    ring: Arc<MbufRing>,
}

impl std::fmt::Debug for MbufProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MbufProducer")
    }
}
impl std::fmt::Debug for MbufConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MbufConsumer")
    }
}

/// A channel of owned mbufs of capacity `size - 1` (`size` a power of two). Needs EAL.
/// Mbufs left in it when both ends are gone are freed.
pub fn mbuf_channel(name: &str, size: u32) -> Result<(MbufProducer, MbufConsumer), DpdkError> {
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
    let ring = Arc::new(MbufRing { ptr });
    Ok((
        MbufProducer {
            ring: Arc::clone(&ring),
        },
        MbufConsumer { ring },
    ))
}

impl MbufProducer {
    /// Hands `m` over; gives it back when the ring is full.
    #[inline]
    pub fn send(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        let p = m.into_raw();
        // SAFETY: single producer (&mut self); the ring takes ownership of p on success.
        let n = unsafe { raw::aves_ring_enqueue(self.ring.ptr.as_ptr(), p.cast()) };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: the ring refused p, so we still own it; p came from into_raw.
            Err(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) })
        }
    }
}

impl MbufConsumer {
    /// Takes the next mbuf, if any.
    #[inline]
    pub fn recv(&mut self) -> Option<Mbuf> {
        let mut obj: *mut c_void = std::ptr::null_mut();
        // SAFETY: single consumer (&mut self); obj is a valid out-pointer.
        let n = unsafe { raw::aves_ring_dequeue(self.ring.ptr.as_ptr(), &mut obj) };
        if n != 1 {
            return None;
        }
        // SAFETY: every pointer in the ring is an owned mbuf sent by MbufProducer.
        NonNull::new(obj.cast::<raw::rte_mbuf>()).map(|p| unsafe { Mbuf::from_raw(p) })
    }
}
