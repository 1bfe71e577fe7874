//! Store and forward (README.md "When the database goes away"): a signed webhook that cannot
//! reach PostgreSQL is appended to a local file and flushed to disk before it is answered; once
//! the database is back, the file is applied in arrival order through the same handlers as a
//! live webhook (`http::spool_replay`; each batch read sorted by [`arrival_order`], since a
//! webhook that waited out the database is written after one that came later), then emptied.
//! While it holds anything, this instance's scheduler sends nothing, and new webhooks join the
//! end of the file (a STOP that arrived first is applied first).
//!
//! A record is `len (u32 LE) · checksum (the first 8 bytes of SHA-256 of the payload) · payload
//! (JSON)`. A record whose checksum does not match, or a tail cut short by a crash, is reported
//! and skipped, never applied in part.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most a record may weigh (a webhook body is at most 64 KiB).
const MAX_RECORD: usize = 1024 * 1024;

/// The most one read of the file takes in (a long outage's spool is replayed in batches).
const BATCH: u64 = 4 * 1024 * 1024;

/// One spooled webhook: what the signature guard verified, and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub arrived_at: DateTime<Utc>,
    /// The path Twilio called (`/twilio/sms`), with its query when it had one.
    pub path: String,
    pub query: Option<String>,
    /// The form pairs, in order, as received.
    pub pairs: Vec<(String, String)>,
    /// The account whose key checked the signature.
    pub signed_by: Option<String>,
}

/// What reading the file found at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Record {
        end: u64,
        record: Record,
    },
    /// Unreadable: skipped (`end` is where the next record starts), with why.
    Corrupt {
        at: u64,
        end: u64,
        why: String,
    },
    /// A tail shorter than its header says (a crash while writing): nothing after it.
    Truncated {
        at: u64,
    },
}

pub struct Spool {
    path: PathBuf,
    file: Mutex<File>,
    /// Records written and not yet applied.
    pending: AtomicU64,
    /// When the oldest pending record arrived (seconds since the epoch; 0: none).
    oldest: AtomicU64,
    /// The last write failed: `/readyz` says so.
    broken: AtomicBool,
    /// Where the replay goes on from (what is before it was applied; 0 after a restart: the
    /// replay of an applied webhook finds it already there).
    replayed_to: AtomicU64,
    /// How much of the file is on disk (flushed): the replay reads no further, so it never
    /// applies a record whose flush failed and which is being cut off again.
    synced: AtomicU64,
    /// Records replayed, by outcome, for `/metrics`.
    pub replayed_applied: AtomicU64,
    pub replayed_skipped: AtomicU64,
    pub corrupt: AtomicU64,
    /// Server errors of a record's replays (by where it ends in the file), across passes.
    pub failures: Mutex<std::collections::HashMap<u64, u32>>,
}

impl Spool {
    /// Opens (or creates) `dir/spool.log`; records left by an earlier run are pending.
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("spool.log");
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        // One process per spool: two that shared one could empty what the other just wrote.
        file.try_lock().map_err(|e| {
            std::io::Error::other(format!(
                "another process holds the spool {} ({e})",
                path.display()
            ))
        })?;
        let spool = Spool {
            path,
            file: Mutex::new(file),
            pending: AtomicU64::new(0),
            oldest: AtomicU64::new(0),
            broken: AtomicBool::new(false),
            replayed_to: AtomicU64::new(0),
            synced: AtomicU64::new(u64::MAX),
            replayed_applied: AtomicU64::new(0),
            replayed_skipped: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            failures: Mutex::default(),
        };
        // Count what an earlier run left, batch by batch. What a crash cut short, or what
        // cannot be framed, is reported and cut off: nothing writes while the spool opens.
        let mut at = 0u64;
        let mut entries = 0u64;
        let mut first: Option<DateTime<Utc>> = None;
        'batches: loop {
            let batch = spool.read_from(at)?;
            if batch.is_empty() {
                break;
            }
            for entry in batch {
                match entry {
                    Entry::Record { end, record } => {
                        first.get_or_insert(record.arrived_at);
                        entries += 1;
                        at = end;
                    }
                    Entry::Corrupt { at: c, why, .. } if why.starts_with("a record length") => {
                        spool.cut(c)?;
                        break 'batches;
                    }
                    Entry::Corrupt { end, .. } => {
                        entries += 1;
                        at = end;
                    }
                    Entry::Truncated { at: c } => {
                        spool.cut(c)?;
                        break 'batches;
                    }
                }
            }
        }
        let len = spool
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .metadata()?
            .len();
        spool.synced.store(len, Ordering::SeqCst);
        if entries > 0 {
            tracing::warn!(
                entries,
                "the spool holds webhooks from an earlier run: they are applied before anything is sent"
            );
            spool.pending.store(entries, Ordering::SeqCst);
            if let Some(at) = first {
                spool.note_oldest(at);
            }
        }
        Ok(spool)
    }

    /// Cuts the file at `at` (a record cut short by a crash, or one that cannot be framed),
    /// reporting it.
    fn cut(&self, at: u64) -> std::io::Result<()> {
        tracing::error!(
            at,
            "the spool ends with a record cut short or unreadable: cut off, reported, never applied"
        );
        self.corrupt.fetch_add(1, Ordering::SeqCst);
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.set_len(at)?;
        file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether anything waits to be applied: new webhooks then join the end of the file, and
    /// the scheduler sends nothing.
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst) > 0
    }

    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }

    /// When the oldest pending record arrived.
    pub fn oldest(&self) -> Option<DateTime<Utc>> {
        match self.oldest.load(Ordering::SeqCst) {
            0 => None,
            secs => DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0),
        }
    }

    /// Where the replay goes on from.
    pub fn replayed_to(&self) -> u64 {
        self.replayed_to.load(Ordering::SeqCst)
    }

    /// Whether the last write went to disk.
    pub fn is_writable(&self) -> bool {
        !self.broken.load(Ordering::SeqCst)
    }

    fn note_oldest(&self, at: DateTime<Utc>) {
        let secs = u64::try_from(at.timestamp()).unwrap_or(1).max(1);
        let _ = self
            .oldest
            .compare_exchange(0, secs, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Appends `record` and flushes it to disk (`fdatasync`) before returning. A write that
    /// fails is undone (the file cut back), so a later record never lands after half of one.
    /// Blocking: call it from `spawn_blocking`.
    pub fn append(&self, record: &Record) -> std::io::Result<()> {
        self.append_when(record, false).map(|_| ())
    }

    /// [`Spool::append`] only while the spool holds something (checked under the file's lock,
    /// so a replay that empties it cannot slip between the check and the write). `Ok(false)`:
    /// it was empty, nothing written.
    pub fn append_if_pending(&self, record: &Record) -> std::io::Result<bool> {
        self.append_when(record, true)
    }

    fn append_when(&self, record: &Record, only_if_pending: bool) -> std::io::Result<bool> {
        let bytes = encode(record)?;
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if only_if_pending && self.pending.load(Ordering::SeqCst) == 0 {
            return Ok(false);
        }
        let before = file.metadata()?.len();
        let written = file.write_all(&bytes).and_then(|()| file.sync_data());
        match written {
            Ok(()) => {
                self.broken.store(false, Ordering::SeqCst);
                self.synced
                    .store(before + bytes.len() as u64, Ordering::SeqCst);
                self.pending.fetch_add(1, Ordering::SeqCst);
                self.note_oldest(record.arrived_at);
                Ok(true)
            }
            Err(e) => {
                self.broken.store(true, Ordering::SeqCst);
                let _ = file.set_len(before).and_then(|()| file.sync_data());
                Err(e)
            }
        }
    }

    /// After a failed write: whether the spool's directory takes a write again (a test file,
    /// written, flushed, removed). Clears the failure when it does.
    pub fn check_writable(&self) -> bool {
        if self.is_writable() {
            return true;
        }
        let probe = self.path.with_extension("probe");
        let ok = File::create(&probe)
            .and_then(|mut f| f.write_all(b"probe").and_then(|()| f.sync_data()))
            .and_then(|()| std::fs::remove_file(&probe))
            .is_ok();
        if ok {
            self.broken.store(false, Ordering::SeqCst);
        }
        ok
    }

    /// The entries from byte `from` on, in order, at most [`BATCH`] bytes of them (a record
    /// the batch cuts is read by the next one).
    pub fn read_from(&self, from: u64) -> std::io::Result<Vec<Entry>> {
        let mut file = File::open(&self.path)?;
        let len = file
            .metadata()?
            .len()
            .min(self.synced.load(Ordering::SeqCst));
        if from >= len {
            return Ok(Vec::new());
        }
        file.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        file.take(BATCH.min(len - from)).read_to_end(&mut bytes)?;
        let mut entries = decode_all(&bytes, from);
        // A record cut by the batch's end, not by the file's: left for the next batch.
        if from + (bytes.len() as u64) < len
            && matches!(entries.last(), Some(Entry::Truncated { .. }))
            && entries.len() > 1
        {
            entries.pop();
        }
        Ok(entries)
    }

    /// Marks the entries up to byte `end` as applied; when nothing was written after them, the
    /// file is emptied and the spool is empty again. Returns whether it is.
    pub fn applied_through(&self, end: u64, entries: u64) -> std::io::Result<bool> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let left = self.pending.load(Ordering::SeqCst).saturating_sub(entries);
        let len = file.metadata()?.len();
        if len == end {
            file.set_len(0)?;
            self.synced.store(0, Ordering::SeqCst);
            self.pending.store(0, Ordering::SeqCst);
            self.oldest.store(0, Ordering::SeqCst);
            self.replayed_to.store(0, Ordering::SeqCst);
            // Emptied in this process either way; an emptying lost to a crash only replays
            // webhooks that are already applied (each is idempotent by its SID).
            if let Err(e) = file.sync_data() {
                tracing::warn!(error = %e, "the emptied spool could not be flushed");
            }
            return Ok(true);
        }
        self.pending.store(left.max(1), Ordering::SeqCst);
        self.replayed_to.store(end, Ordering::SeqCst);
        Ok(false)
    }
}

impl Entry {
    /// Where the next entry starts; `None` for a truncated tail.
    pub fn end(&self) -> Option<u64> {
        match self {
            Entry::Record { end, .. } | Entry::Corrupt { end, .. } => Some(*end),
            Entry::Truncated { .. } => None,
        }
    }
}

/// The order a batch read from the spool is applied in (README.md "When the database goes
/// away"): its records by when they arrived, not by when they were written (a webhook that
/// waited out the database's 8 s is written after one that came later and found the spool
/// already holding something). Records that arrived at the same instant keep their place in
/// the file; unreadable entries, which are only reported, come first; nothing from a truncated
/// tail on. Indices into `entries`.
pub fn arrival_order(entries: &[Entry]) -> Vec<usize> {
    let mut order: Vec<usize> = entries
        .iter()
        .take_while(|e| e.end().is_some())
        .enumerate()
        .map(|(i, _)| i)
        .collect();
    order.sort_by_key(|&i| match &entries[i] {
        Entry::Record { record, .. } => Some(record.arrived_at),
        _ => None,
    });
    order
}

/// How far the file is applied once the entries whose ends are in `done` are (applied or
/// passed, in [`arrival_order`]): the longest run of them from the batch's start, as the byte
/// it ends at (`from` when none) and how many entries it holds. What was applied beyond it is
/// remembered by the replay, not marked, so a stop leaves nothing unapplied behind the mark.
pub fn applied_prefix(
    from: u64,
    entries: &[Entry],
    done: &std::collections::HashSet<u64>,
) -> (u64, u64) {
    let mut end = from;
    let mut count = 0;
    for e in entries {
        match e.end() {
            Some(e) if done.contains(&e) => {
                end = e;
                count += 1;
            }
            _ => break,
        }
    }
    (end, count)
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(payload);
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// A record as written.
pub fn encode(record: &Record) -> std::io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(record)?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_RECORD)
        .ok_or_else(|| std::io::Error::other("a spool record over 1 MiB"))?;
    let mut out = Vec::with_capacity(12 + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(&payload));
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Every entry of `bytes` (which starts at byte `base` of the file).
pub fn decode_all(bytes: &[u8], base: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let pos = base + at as u64;
        let Some(header) = bytes.get(at..at + 12) else {
            out.push(Entry::Truncated { at: pos });
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_RECORD {
            // A length that cannot be: the rest cannot be framed.
            out.push(Entry::Corrupt {
                at: pos,
                end: base + bytes.len() as u64,
                why: format!("a record length of {len} bytes"),
            });
            break;
        }
        let Some(payload) = bytes.get(at + 12..at + 12 + len) else {
            out.push(Entry::Truncated { at: pos });
            break;
        };
        let end = base + (at + 12 + len) as u64;
        if header[4..12] != checksum(payload) {
            out.push(Entry::Corrupt {
                at: pos,
                end,
                why: "its checksum does not match".into(),
            });
        } else {
            match serde_json::from_slice::<Record>(payload) {
                Ok(record) => out.push(Entry::Record { end, record }),
                Err(e) => out.push(Entry::Corrupt {
                    at: pos,
                    end,
                    why: format!("it does not decode: {e}"),
                }),
            }
        }
        at += 12 + len;
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn record(n: u32) -> Record {
        arrived(&format!("SM{n:032x}"), n)
    }

    /// A STOP (with control characters, as a carrier may send) by `sid`, `secs` after a fixed
    /// instant. Shared with the replay's tests (`src/http/spool_replay.rs`).
    pub(crate) fn arrived(sid: &str, secs: u32) -> Record {
        Record {
            arrived_at: DateTime::from_timestamp(1_781_272_800 + i64::from(secs), 0)
                .unwrap_or_default(),
            path: "/twilio/sms".into(),
            query: None,
            pairs: vec![
                ("MessageSid".into(), sid.into()),
                ("Body".into(), "STOP\u{0}\u{1b}".into()),
            ],
            signed_by: Some("AC00000000000000000000000000000001".into()),
        }
    }

    /// An empty directory of this process's own for a test's spool.
    pub(crate) fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tb-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn records_come_back_in_order_and_a_reopened_spool_still_holds_them() {
        let d = dir("order");
        let spool = Spool::open(&d).expect("open");
        assert!(!spool.has_pending());
        for n in 0..3 {
            spool.append(&record(n)).expect("append");
        }
        assert_eq!(spool.pending(), 3);
        assert_eq!(spool.oldest(), Some(record(0).arrived_at));
        drop(spool);
        let spool = Spool::open(&d).expect("reopen");
        assert_eq!(spool.pending(), 3, "a restart keeps what was spooled");
        let read = spool.read_from(0).expect("read");
        let records: Vec<Record> = read
            .iter()
            .filter_map(|r| match r {
                Entry::Record { record, .. } => Some(record.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(records, vec![record(0), record(1), record(2)]);
        let Some(Entry::Record { end, .. }) = read.last() else {
            panic!("records")
        };
        assert!(spool.applied_through(*end, 3).expect("applied"));
        assert!(!spool.has_pending());
        assert_eq!(
            std::fs::metadata(spool.path()).map(|m| m.len()).ok(),
            Some(0)
        );
    }

    #[test]
    fn one_process_per_spool_and_a_webhook_joins_only_a_spool_that_holds_something() {
        let d = dir("lock");
        let spool = Spool::open(&d).expect("open");
        assert!(
            Spool::open(&d).is_err(),
            "a second holder of the same spool is refused"
        );
        assert!(!spool.append_if_pending(&record(0)).expect("write"));
        assert_eq!(spool.pending(), 0, "an empty spool is not joined");
        spool.append(&record(0)).expect("append");
        assert!(spool.append_if_pending(&record(1)).expect("write"));
        assert_eq!(spool.pending(), 2);
        assert!(spool.check_writable());
        drop(spool);
        assert!(Spool::open(&d).is_ok(), "free again once the first is gone");
    }

    #[test]
    fn a_record_written_during_the_replay_keeps_the_spool_pending() {
        let d = dir("during");
        let spool = Spool::open(&d).expect("open");
        spool.append(&record(0)).expect("append");
        let read = spool.read_from(0).expect("read");
        spool.append(&record(1)).expect("a webhook meanwhile");
        let Some(Entry::Record { end, .. }) = read.last() else {
            panic!("a record")
        };
        assert!(!spool.applied_through(*end, 1).expect("applied"));
        assert!(spool.has_pending());
        let rest = spool.read_from(*end).expect("rest");
        assert!(matches!(&rest[..], [Entry::Record { record: r, .. }] if *r == record(1)));
    }

    #[test]
    fn the_replay_reads_only_what_was_flushed() {
        let d = dir("flushed");
        let spool = Spool::open(&d).expect("open");
        spool.append(&record(0)).expect("append");
        // Bytes in the file that no append flushed (a write whose flush failed, about to be
        // cut off again): not read.
        let mut raw = OpenOptions::new()
            .append(true)
            .open(spool.path())
            .expect("the file");
        raw.write_all(&encode(&record(1)).expect("encode"))
            .expect("write");
        let read = spool.read_from(0).expect("read");
        assert!(
            matches!(&read[..], [Entry::Record { record: r, .. }] if *r == record(0)),
            "{read:?}"
        );
        let Some(end) = read[0].end() else {
            panic!("a record")
        };
        assert!(spool.read_from(end).expect("read").is_empty());
        assert!(
            spool
                .read_from(end + 1000)
                .expect("past the end")
                .is_empty()
        );
    }

    #[test]
    fn a_corrupt_record_is_skipped_and_a_cut_tail_is_reported_never_applied_in_part() {
        let mut bytes = Vec::new();
        for n in 0..3 {
            bytes.extend(encode(&record(n)).expect("encode"));
        }
        let first = encode(&record(0)).expect("encode").len();
        // A flipped byte in the second record's payload.
        bytes[first + 20] ^= 0xFF;
        let whole = bytes.len();
        // A fourth record cut short.
        bytes.extend(&encode(&record(3)).expect("encode")[..30]);
        let read = decode_all(&bytes, 0);
        assert_eq!(read.len(), 4, "{read:?}");
        assert!(matches!(&read[0], Entry::Record { record: r, .. } if *r == record(0)));
        assert!(
            matches!(&read[1], Entry::Corrupt { why, .. } if why.contains("checksum")),
            "{:?}",
            read[1]
        );
        assert!(matches!(&read[2], Entry::Record { record: r, .. } if *r == record(2)));
        assert_eq!(read[3], Entry::Truncated { at: whole as u64 });
        // A length that cannot be frames nothing after it.
        let mut bad = 0xFFFF_FFFFu32.to_le_bytes().to_vec();
        bad.extend([0u8; 20]);
        assert!(matches!(&decode_all(&bad, 0)[..], [Entry::Corrupt { .. }]));
        assert!(decode_all(&[], 0).is_empty());
    }

    fn at(n: u32, arrived: u32) -> Entry {
        Entry::Record {
            end: u64::from(n + 1) * 100,
            record: record(arrived),
        }
    }

    #[test]
    fn a_batch_is_applied_by_arrival_ties_in_the_files_order() {
        let corrupt = Entry::Corrupt {
            at: 200,
            end: 300,
            why: "its checksum does not match".into(),
        };
        let table: Vec<(Vec<Entry>, Vec<usize>)> = vec![
            (vec![], vec![]),
            (vec![at(0, 5)], vec![0]),
            // Written in the order they arrived: unchanged.
            (vec![at(0, 1), at(1, 2), at(2, 3)], vec![0, 1, 2]),
            // The STOP that waited less was written first: the START that came before it goes
            // first.
            (vec![at(0, 9), at(1, 4)], vec![1, 0]),
            (vec![at(0, 3), at(1, 1), at(2, 2)], vec![1, 2, 0]),
            // The same instant: the file's order.
            (vec![at(0, 7), at(1, 7), at(2, 6)], vec![2, 0, 1]),
            // Unreadable entries are reported first; they are never applied.
            (vec![at(0, 4), at(1, 2), corrupt.clone()], vec![2, 1, 0]),
            // Nothing from a tail being written.
            (
                vec![at(0, 4), at(1, 2), Entry::Truncated { at: 200 }, at(3, 1)],
                vec![1, 0],
            ),
            (vec![Entry::Truncated { at: 0 }], vec![]),
        ];
        for (entries, want) in table {
            assert_eq!(arrival_order(&entries), want, "{entries:?}");
        }
    }

    #[test]
    fn the_mark_stops_at_the_first_entry_not_applied() {
        let entries = vec![at(0, 3), at(1, 1), at(2, 2), Entry::Truncated { at: 300 }];
        let done = |ends: &[u64]| {
            ends.iter()
                .copied()
                .collect::<std::collections::HashSet<_>>()
        };
        let table: Vec<(Vec<u64>, (u64, u64))> = vec![
            (vec![], (0, 0)),
            // Applied ahead of the first: nothing marked, kept by the replay instead.
            (vec![200, 300], (0, 0)),
            (vec![100], (100, 1)),
            (vec![100, 300], (100, 1)),
            (vec![100, 200], (200, 2)),
            // All of them: up to the truncated tail, never past it.
            (vec![100, 200, 300], (300, 3)),
        ];
        for (ends, want) in table {
            assert_eq!(applied_prefix(0, &entries, &done(&ends)), want, "{ends:?}");
        }
        // A batch that starts further on marks from where it starts.
        assert_eq!(applied_prefix(4000, &[], &done(&[])), (4000, 0));
    }
}
