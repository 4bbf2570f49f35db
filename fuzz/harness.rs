//! A small mutation fuzzer that runs as an ordinary `cargo test` on the stable toolchain
//! (issue 12). Each fuzz target is a file of `fuzz/targets/` (its `TARGET`, `seeds` and
//! `execute`), run by an integration test of the crate it exercises that includes this file
//! and the target's (`#[path = "../../../fuzz/harness.rs"] mod harness;`). The AFL++ drivers
//! of `fuzz/afl/` include the same two files and call [`execute_bounded`] instead of [`run`]:
//! AFL++ then chooses the inputs by coverage, with the same target and the same heap bound.
//!
//! A run replays every file of the target's committed corpus (`fuzz/corpus/<target>/`), then
//! mutates inputs drawn from a pool (the corpus plus every mutated input that produced an
//! outcome the pool had not seen yet — the target names the outcome: an error kind, a decoded
//! API, a recovery result) for a bounded number of executions, with a seeded generator so a
//! failure reproduces. Without coverage instrumentation the outcome names stand in for
//! coverage: they keep inputs that reached somewhere new.
//!
//! Every execution runs under `catch_unwind`. A panic, or a peak of live heap bytes on the
//! executing thread above the target's limit (a fixed multiple of the input size plus a
//! floor: the test binary installs [`CountingAllocator`]), saves the input to
//! `target/fuzz/crashes/<target>/` and fails the test naming the file. A found crash is fixed
//! and its input committed to the corpus, so CI replays it forever.
//!
//! Budget, from the environment:
//! - `SLUICE_FUZZ_SECONDS=N` — run for N seconds (the long run, `scripts/fuzz.sh`);
//! - `SLUICE_FUZZ_ITERATIONS=N` — N mutated executions (default: the target's CI figure);
//! - `SLUICE_FUZZ_SEED=N` — the generator's seed (default fixed; a timed run prints its seed).
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most inputs the pool keeps (corpus plus inputs with a new outcome); older mutants are
/// replaced at random past it. Bounds the harness's own memory: pool inputs are capped at
/// [`INPUT_BYTES_MAX`].
pub const POOL_INPUTS_MAX: usize = 4096;

/// Largest input the mutator produces, in bytes; larger corpus files are replayed whole but
/// mutated only in their first `INPUT_BYTES_MAX` bytes.
pub const INPUT_BYTES_MAX: usize = 256 * 1024;

/// Most distinct outcome names remembered.
const OUTCOMES_MAX: usize = 100_000;

thread_local! {
    static LIVE_BYTES: Cell<usize> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting live heap bytes per thread and their peak, so the harness
/// can bound what one execution allocates. A test binary opts in with
/// `#[global_allocator] static ALLOCATOR: harness::CountingAllocator = harness::CountingAllocator;`.
pub struct CountingAllocator;

fn note_alloc(bytes: usize) {
    let _ = LIVE_BYTES.try_with(|live| {
        let now = live.get().saturating_add(bytes);
        live.set(now);
        let _ = PEAK_BYTES.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_free(bytes: usize) {
    let _ = LIVE_BYTES.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are plain thread-locals
// with const initialisers (no allocation, no destructor). The workspace denies unsafe code;
// this test-only allocator is the one exception, because a `GlobalAlloc` cannot be written
// without it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        note_free(layout.size());
        System.realloc(ptr, layout, new_size)
    }
}

/// Live heap bytes this thread allocated during `f` at their peak, above what was live before.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE_BYTES.with(Cell::get);
    PEAK_BYTES.with(|p| p.set(base));
    let out = f();
    (out, PEAK_BYTES.with(Cell::get).saturating_sub(base))
}

/// One fuzz target.
pub struct Target {
    /// Directory name under `fuzz/corpus/` and `target/fuzz/crashes/`.
    pub name: &'static str,
    /// Mutated executions in CI (when neither budget variable is set).
    pub ci_iterations: u64,
    /// Allowed peak heap bytes of one execution, for an input of this many bytes; `None`
    /// when the work happens on other threads (the broker's tasks) and cannot be counted.
    pub heap_bytes_max: Option<fn(usize) -> usize>,
}

/// Deterministic SplitMix64.
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..bound` (`bound > 0`).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Values a hostile peer plants where a length, count or offset is read: big-endian i16/i32/
/// i64 edges, unsigned varints and zig-zag varints of huge values, and -1 (null).
const INTERESTING: [&[u8]; 14] = [
    &[0x7f, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff],
    &[0x80, 0x00, 0x00, 0x00],
    &[0x40, 0x00, 0x00, 0x00],
    &[0x00, 0x7f, 0xff, 0xff],
    &[0x00, 0x00, 0x00, 0x00],
    &[0x7f, 0xff],
    &[0xff, 0xff],
    &[0x80, 0x00],
    &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x80, 0, 0, 0, 0, 0, 0, 0],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xfe, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x04],
];

/// One to four stacked mutations of `input`, sometimes spliced with `other`.
pub fn mutate(random: &mut Random, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input[..input.len().min(INPUT_BYTES_MAX)].to_vec();
    for _ in 0..1 + random.below(4) {
        let len = out.len();
        match random.below(10) {
            0 | 1 if len > 0 => {
                let at = random.below(len);
                out[at] ^= 1 << random.below(8);
            }
            2 if len > 0 => {
                let at = random.below(len);
                out[at] = [0, 0xff, 0x7f, 0x80, 1][random.below(5)];
            }
            3 => {
                let value = INTERESTING[random.below(INTERESTING.len())];
                let at = random.below(len + 1);
                let end = (at + value.len()).min(len);
                out.splice(at..end, value.iter().copied());
            }
            4 if len > 0 => out.truncate(random.below(len)),
            5 if len > 1 => {
                let at = random.below(len);
                let n = 1 + random.below((len - at).min(64));
                out.drain(at..at + n);
            }
            6 if len > 0 && len < INPUT_BYTES_MAX => {
                // Duplicate a chunk (repeated elements, repeated frames).
                let at = random.below(len);
                let n = 1 + random.below((len - at).min(256));
                let chunk: Vec<u8> = out[at..at + n].to_vec();
                let to = random.below(len + 1);
                out.splice(to..to, chunk);
            }
            7 if !other.is_empty() => {
                // Splice: our head, the other input's tail.
                let cut = random.below(len + 1);
                let from = random.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            8 if len >= 4 => {
                // Add or subtract a little from a big-endian u32 (a length off by a few).
                let at = random.below(len - 3);
                let value = u32::from_be_bytes(out[at..at + 4].try_into().expect("4 bytes"));
                let delta = random.below(33) as u32;
                let value = if random.chance(2) { value.wrapping_add(delta) } else { value.wrapping_sub(delta) };
                out[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
            _ => {
                let at = random.below(len + 1);
                let n = 1 + random.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| random.next() as u8).collect();
                out.splice(at..at, bytes);
            }
        }
    }
    out.truncate(INPUT_BYTES_MAX);
    out
}

/// `fuzz/` of the repository, from the including crate's manifest directory.
pub fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The committed corpus of a target, sorted by file name (empty if the directory is missing).
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// What a run did, printed at its end.
#[derive(Debug, Default)]
pub struct Summary {
    pub replayed: usize,
    pub executions: u64,
    pub outcomes: usize,
    pub pool: usize,
    pub elapsed: Duration,
}

/// Runs `target`: replays its corpus, then mutates. `execute` returns the name of the outcome
/// (kept short and free of input-specific numbers, so that it names a path, not an input).
pub fn run(target: &Target, execute: impl FnMut(&[u8]) -> String) -> Summary {
    run_with_seeds(target, Vec::new(), execute)
}

/// [`run`] with `extra` seeds besides the committed corpus (inputs built by the test itself,
/// for shapes the captured corpus lacks).
pub fn run_with_seeds(
    target: &Target,
    extra: Vec<(String, Vec<u8>)>,
    mut execute: impl FnMut(&[u8]) -> String,
) -> Summary {
    let mut corpus = corpus(target.name);
    corpus.extend(extra);
    assert!(!corpus.is_empty(), "fuzz/corpus/{} is empty or missing, and no seeds were built", target.name);
    let seconds = env_u64("SLUICE_FUZZ_SECONDS");
    let seed = env_u64("SLUICE_FUZZ_SEED").unwrap_or(if seconds.is_some() {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    } else {
        0x5eed_f00d
    });
    let iterations = env_u64("SLUICE_FUZZ_ITERATIONS").unwrap_or(target.ci_iterations);
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    eprintln!("fuzz target {}: seed {seed}, {} corpus inputs", target.name, corpus.len());

    let started = Instant::now();
    let mut outcomes: HashSet<String> = HashSet::new();
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut summary = Summary::default();
    for (name, input) in &corpus {
        let outcome = execute_checked(target, input, &mut execute, &format!("corpus file {name}"));
        outcomes.insert(outcome);
        pool.push(input[..input.len().min(INPUT_BYTES_MAX)].to_vec());
        summary.replayed += 1;
    }
    let mut random = Random::new(seed);
    loop {
        let done = match deadline {
            Some(deadline) => Instant::now() >= deadline,
            None => summary.executions >= iterations,
        };
        if done {
            break;
        }
        let input = {
            let a = &pool[random.below(pool.len())];
            let b = &pool[random.below(pool.len())];
            mutate(&mut random, a, b)
        };
        let outcome = execute_checked(target, &input, &mut execute, "a mutated input");
        summary.executions += 1;
        if outcomes.len() < OUTCOMES_MAX && outcomes.insert(outcome) {
            if pool.len() < POOL_INPUTS_MAX {
                pool.push(input);
            } else {
                let victim = corpus.len() + random.below(POOL_INPUTS_MAX - corpus.len());
                pool[victim] = input;
            }
        }
    }
    summary.outcomes = outcomes.len();
    summary.pool = pool.len();
    summary.elapsed = started.elapsed();
    eprintln!(
        "fuzz target {}: {} corpus inputs replayed, {} mutated executions in {:.1} s ({:.0}/s), {} distinct outcomes, pool {}",
        target.name,
        summary.replayed,
        summary.executions,
        summary.elapsed.as_secs_f64(),
        summary.executions as f64 / summary.elapsed.as_secs_f64().max(1e-9),
        summary.outcomes,
        summary.pool
    );
    summary
}

/// An outcome name from an error message: digits dropped (they name the input, not the
/// path), at most 60 characters.
pub fn shape(text: &str) -> String {
    text.chars().filter(|c| !c.is_ascii_digit()).take(60).collect()
}

fn execute_checked(target: &Target, input: &[u8], execute: &mut impl FnMut(&[u8]) -> String, what: &str) -> String {
    let (result, peak) = peak_during(|| catch_unwind(AssertUnwindSafe(|| execute(input))));
    match result {
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let saved = save_crash(target.name, input);
            panic!("fuzz target {}: {what} panicked ({message}); input saved to {}", target.name, saved.display());
        }
        Ok(outcome) => {
            if let Some(overrun) = heap_overrun(target, input.len(), peak) {
                let saved = save_crash(target.name, input);
                panic!("fuzz target {}: {what} {overrun}; input saved to {}", target.name, saved.display());
            }
            outcome
        }
    }
}

/// Runs `execute_once` on `input` as it is and on a copy `reseal` fixed the checksums of, so
/// that mutations also reach the decoding behind them; the outcome is both names.
pub fn as_is_and_resealed(input: &[u8], reseal: fn(&mut [u8]), execute_once: impl Fn(&[u8]) -> String) -> String {
    let raw = execute_once(input);
    let mut resealed = input.to_vec();
    reseal(&mut resealed);
    format!("{raw} | {}", execute_once(&resealed))
}

/// One execution of `target` with the run's heap check, for a coverage-guided driver
/// (`fuzz/afl/`: AFL++ chooses the inputs, this file's mutator is not used). A panic of the
/// target propagates, and a heap peak over the target's limit panics naming both: either
/// way the driver aborts and AFL++ records the input as a crash.
pub fn execute_bounded(target: &Target, input: &[u8], execute: impl FnOnce(&[u8]) -> String) -> String {
    let (outcome, peak) = peak_during(|| execute(input));
    if let Some(overrun) = heap_overrun(target, input.len(), peak) {
        panic!("fuzz target {}: an input {overrun}", target.name);
    }
    outcome
}

/// What to report when an execution of an input of `input_bytes` held `peak` heap bytes over
/// the target's limit; `None` within it (or when the target has no limit).
fn heap_overrun(target: &Target, input_bytes: usize, peak: usize) -> Option<String> {
    let limit = target.heap_bytes_max.map(|f| f(input_bytes))?;
    (peak > limit).then(|| format!("of {input_bytes} bytes peaked at {peak} heap bytes, over the limit of {limit}"))
}

fn save_crash(target: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz/crashes").join(target);
    let _ = std::fs::create_dir_all(&dir);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in input {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("crash-{hash:016x}"));
    let _ = std::fs::write(&path, input);
    path
}
