// mimalloc instead of glibc's allocator: a flow is allocated and freed for every connection of
// the capture, and glibc grew its heap in small steps that each cost page faults (measured when
// every flow stayed to the report: about 100,000 on the 1 GB bench capture against about 5,000,
// and a fifth of the run time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e` of the bundled mimalloc 3;
/// `libmimalloc-sys` names no constant for it). The test below checks the place.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Memory a thread frees goes back to the system at once instead of a second later (the
/// bundled mimalloc's default): the flows of a capture are made by the worker threads and
/// freed by the thread that folds them, and on a flood the pages freed but not yet returned
/// were a third of the peak RSS (the SYN flood on two threads: 262 MiB with the default, 159
/// MiB with this). Left alone when the user set `MIMALLOC_PURGE_DELAY`.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option of the allocator, which reads it when it next purges; no
        // memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

fn main() -> std::process::ExitCode {
    purge_freed_memory_at_once();
    allowscope::cli::main()
}

#[cfg(test)]
mod tests {
    /// The option's place is the purge delay's: its default in the bundled mimalloc (1,000 ms),
    /// unless the environment set it, and it takes a new value.
    #[test]
    fn the_purge_delay_option_is_where_it_is_set() {
        use libmimalloc_sys::{mi_option_get, mi_option_set};
        // SAFETY: reads and sets an allocator option.
        unsafe {
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY), 1000);
            }
            mi_option_set(super::MI_OPTION_PURGE_DELAY, 0);
            assert_eq!(mi_option_get(super::MI_OPTION_PURGE_DELAY), 0);
        }
    }
}
