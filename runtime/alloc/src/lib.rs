//! Portico's global allocator: [mimalloc](https://github.com/microsoft/mimalloc), for the
//! `portico` binary and both SDKs' native modules.
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: portico_alloc::Mimalloc = portico_alloc::Mimalloc;
//!
//! let words: Vec<String> = ["every", "allocation", "is", "mimalloc's"].map(String::from).into();
//! assert_eq!(words.concat(), "everyallocationismimalloc's");
//! ```
//!
//! Why mimalloc: a served request allocates and frees many small buffers (JSON values, headers,
//! futures); with glibc's malloc that was about a sixth of the gateway's CPU (`perf`, `cargo
//! xtask bench gateway`) and a seventh of the client core's instructions per call.
//!
//! Why not the `mimalloc` crate's allocator: it asks for every allocation through
//! `mi_malloc_aligned`, whose quick path only holds for blocks of at most 1 KiB. Larger ones
//! (a request's boxed future, a spawned task, a read-ahead `_meta`) took mimalloc's generic
//! aligned path, which over-allocates by the alignment and re-aligns: about a dozen such
//! allocations per call relayed by the gateway, ~200 instructions each. Every mimalloc block is
//! aligned to a word at least, so a layout that needs no more (nearly all of Rust's) is asked
//! for with plain `mi_malloc`, as Rust's own `System` allocator does with `malloc`; callgrind,
//! concurrency 8: 105.5k → 102.5k instructions per call relayed by the gateway, 50.2k → 48.4k
//! per stateless call to `portico serve everything`, 41.1k → 40.0k per session call.
//!
//! Built with mimalloc's `no_thp`: it does not ask the kernel for transparent huge pages
//! (`madvise(MADV_HUGEPAGE)` on its arenas). With them, the process's memory grew in 2 MiB
//! steps: 1000 idle sessions read as exactly 2 MiB more (2.05 KiB each) however small a session
//! was, and a fresh server took 21 MiB instead of 14. A server's memory is many small records
//! (sessions, cached pages), for which 4 KiB pages are the better trade; the server's req/s did
//! not move, the gateway's fell by about an eighth (docs/benchmarks.md). On a host whose THP
//! setting is `always` (not `madvise`), the kernel still uses them (the way to have the
//! gateway's speed back); `MIMALLOC_ALLOW_THP=0` in the environment turns them off there.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block has: its size classes are multiples of a word, carved
/// from word-aligned pages (and the smallest block is a word).
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator (see the crate's docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mimalloc;

// SAFETY: every method hands mimalloc the layout's size, and its alignment whenever that is more
// than a word (which a plain mimalloc block need not have); `dealloc` and `realloc` get pointers
// this allocator returned, which `mi_free` and `mi_realloc[_aligned]` take whichever function
// allocated them. A null return (out of memory) is passed on, as `GlobalAlloc` expects.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl's comment.
        unsafe { by_alignment(layout, mi::mi_malloc, mi::mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl's comment.
        unsafe { by_alignment(layout, mi::mi_zalloc, mi::mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: see the impl's comment.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl's comment; the block keeps the layout's alignment.
        unsafe {
            if layout.align() <= WORD {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// A block of `layout`'s size from `plain` when a mimalloc block's own alignment serves the
/// layout, else from `aligned`, told the alignment.
///
/// # Safety
///
/// `plain` and `aligned` are mimalloc's allocating functions of those shapes.
#[allow(unsafe_code)]
#[inline]
unsafe fn by_alignment(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: the caller's promise; any size is valid for them (null when out of memory).
    unsafe {
        if layout.align() <= WORD {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks come back aligned as their layouts ask, from a word to a page, through growth
    /// and shrinkage, with their contents kept (the test runs on the system allocator and calls
    /// this one directly).
    #[test]
    fn blocks_are_aligned_as_asked_and_keep_their_contents() {
        let sizes = [1, 7, 8, 24, 100, 1000, 1025, 3000, 70_000, 1 << 21];
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in sizes {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: the layouts are non-zero in size; every block is freed once, by this
                // allocator, with the layout it was made with (or grown to).
                unsafe {
                    let p = Mimalloc.alloc(layout);
                    assert!(!p.is_null(), "{size} bytes aligned to {align}");
                    assert_eq!(p as usize % align, 0, "{size} bytes aligned to {align}");
                    p.write_bytes(0xA5, size);
                    let grown = Mimalloc.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "{size} bytes grown, aligned to {align}");
                    assert!(std::slice::from_raw_parts(grown, size).iter().all(|&b| b == 0xA5));
                    let shrunk = Mimalloc.realloc(
                        grown,
                        Layout::from_size_align(size * 3, align).unwrap(),
                        size.div_ceil(2),
                    );
                    assert_eq!(shrunk as usize % align, 0, "{size} bytes shrunk, aligned to {align}");
                    assert!(
                        std::slice::from_raw_parts(shrunk, size.div_ceil(2))
                            .iter()
                            .all(|&b| b == 0xA5)
                    );
                    Mimalloc.dealloc(shrunk, Layout::from_size_align(size.div_ceil(2), align).unwrap());

                    let z = Mimalloc.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "{size} zeroed bytes aligned to {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    Mimalloc.dealloc(z, layout);
                }
            }
        }
    }
}
