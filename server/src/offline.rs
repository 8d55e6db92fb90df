//! The binary's offline subcommands, run on `--data-dir` with no server running:
//! `verify`, `repair` and `repair --skip-damaged-record` (the store's `log/repair.rs`,
//! `log/lost.rs` and `log/skip.rs` do the work; this prints it for an operator).

use clap::Subcommand;
use evenire_server::Config;
use evenire_server::store::fs::RealFs;
use evenire_server::store::lost::Lost;
use evenire_server::store::repair::{self, Damage, Health};
use evenire_server::store::restore::{self, Restored};
use evenire_server::store::skip::{self, LOST_EVENT_TYPE, Replacement};
use evenire_server::store::{IndexCheck, StoreError, check_index, lock_dir};
use std::path::Path;
use std::process::ExitCode;

/// Offline work on --data-dir, with no server running.
#[derive(Debug, Subcommand)]
pub enum Offline {
    /// Check every record of the log, and the index on disk against it, and report;
    /// changes nothing in the log. Exit 1 if the log is damaged (an index that does not
    /// agree is reported, not an error: the next start rebuilds it).
    Verify,
    /// Cut the log at its first damaged record so that the server can start again.
    /// Everything after that record is lost: see what with --dry-run first, and prefer
    /// restoring the file from a backup.
    Repair {
        /// Report what would be done, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Instead of cutting, replace only the damaged record, when the records around
        /// it are intact: its events become events of type `$lost` at the same
        /// positions and versions, and nothing else is lost.
        #[arg(long)]
        skip_damaged_record: bool,
    },
    /// Restore a backup (a directory `evenire backup` wrote) into --data-dir, which
    /// must be empty or not exist: every file is checked against the backup's manifest
    /// and every record read, as a start would.
    Restore {
        /// The backup directory.
        #[arg(long, value_name = "DIR")]
        from: std::path::PathBuf,
        /// Restore only the events at positions below this one (point in time: the
        /// position of the first event to leave out). An append that straddles it is
        /// left out whole. Default: all of the backup.
        #[arg(long, value_name = "POSITION")]
        to_position: Option<u64>,
    },
}

/// Runs `offline` and prints what it found; the exit status says whether the log is
/// (now) sound.
pub fn run(config: &Config, offline: Offline) -> ExitCode {
    let dir = &config.data_dir;
    let outcome = match offline {
        // Locked, though it changes nothing: a live server's log changes under the
        // check, which would report its newest group as torn.
        Offline::Verify => locked(dir, false, || {
            let health = repair::verify(dir)?;
            // Only a sound log can be replayed to check the index against.
            let index = match health {
                Health::Sound { .. } => Some(check_index(dir, config.snapshots_per_stream)),
                Health::Damaged(_) => None,
            };
            Ok((health, index))
        })
        .map(|(health, index)| {
            let status = report(dir, &health, Mode::Verify);
            if let Some(index) = index {
                report_index(index);
            }
            status
        }),
        Offline::Repair {
            dry_run,
            skip_damaged_record: false,
        } => locked(dir, dry_run, || repair::repair(dir, dry_run)).map(|health| {
            let mode = if dry_run { Mode::DryRun } else { Mode::Cut };
            report(dir, &health, mode)
        }),
        Offline::Repair {
            dry_run,
            skip_damaged_record: true,
        } => locked(dir, dry_run, || skip::skip_damaged_record(dir, dry_run))
            .map(|skipped| report_skip(skipped, dry_run)),
        Offline::Restore { from, to_position } => {
            return match restore::restore(&from, dir, to_position) {
                Ok(restored) => report_restore(&from, dir, &restored),
                Err(e) => {
                    eprintln!("evenire-server: restore refused: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("evenire-server: {e}");
        ExitCode::FAILURE
    })
}

/// Runs `work` holding the directory's lock (so no server runs meanwhile), unless it
/// is a dry run.
fn locked<T>(
    dir: &Path,
    dry_run: bool,
    work: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let lock = match dry_run {
        true => None,
        false => lock_dir(&RealFs, dir)?,
    };
    let done = work();
    drop(lock);
    done
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Verify,
    DryRun,
    Cut,
}

/// What checking the index on disk against the log found.
fn report_index(index: Result<Option<IndexCheck>, StoreError>) {
    let rebuilt = "the next start rebuilds it from the log";
    match index {
        Ok(None) => {}
        Ok(Some(IndexCheck {
            checkpoint: None, ..
        })) => println!("index on disk: covers no segment yet (the server fills it)"),
        Ok(Some(IndexCheck {
            checkpoint: Some(checkpoint),
            records,
            chunks,
            deletes,
            answers,
            difference: None,
        })) => println!(
            "index on disk: agrees with the log through segment {} (positions below {}): \
             {records} record(s), {chunks} chunk(s), {deletes} delete(s), \
             {answers} answer(s)",
            checkpoint.segment, checkpoint.end_position
        ),
        Ok(Some(IndexCheck {
            difference: Some(difference),
            ..
        })) => println!("index on disk: does not agree with the log, {rebuilt}: {difference}"),
        Err(e) => println!("index on disk: cannot be checked, {rebuilt}: {e}"),
    }
}

fn report(dir: &Path, health: &Health, mode: Mode) -> ExitCode {
    let verb = if mode == Mode::Cut {
        "cut"
    } else {
        "would cut"
    };
    match health {
        Health::Sound {
            segments,
            records,
            events,
            torn,
        } => {
            println!(
                "{}: sound: {segments} segment(s), {records} record(s), {events} event(s)",
                dir.display()
            );
            if let Some(torn) = torn {
                println!(
                    "torn write at the end of {} at offset {} ({} bytes, past what sync marks \
                     say was synced): {} ({verb} it; the server also does at start)",
                    torn.path.display(),
                    torn.valid_len,
                    torn.dropped,
                    torn.reason
                );
            }
            ExitCode::SUCCESS
        }
        Health::Damaged(damage) => {
            println!("damaged: {}", damage.error);
            println!("{verb} the log there: {}", what_a_cut_loses(damage));
            if mode != Mode::Cut {
                println!(
                    "restore the file from a backup; or run `evenire-server repair \
                     --skip-damaged-record` to lose only the damaged record's events (when \
                     the records around it are intact); or `evenire-server repair` to cut \
                     the log there, losing all of the above"
                );
                return ExitCode::FAILURE;
            }
            println!("repaired: the server can start");
            ExitCode::SUCCESS
        }
    }
}

/// Bytes, records, events and streams that a cut at `damage` loses.
fn what_a_cut_loses(damage: &Damage) -> String {
    let Lost {
        records,
        events,
        streams,
        deletes,
        damaged_positions,
        ..
    } = &damage.lost;
    let damaged = match damaged_positions {
        Some(p) if p.is_empty() => "held no events (a delete or a sync mark)".to_string(),
        Some(p) => format!(
            "held {} event(s), at positions {}..={}",
            p.end - p.start,
            p.start,
            p.end - 1
        ),
        None => "held events no intact record after it can place".to_string(),
    };
    format!(
        "{} byte(s) of {} from offset {}, and {} later segment(s) ({} bytes): the damaged \
         record, which {damaged}, and {records} intact record(s) after it, holding \
         {events} event(s) of {streams} stream(s) and {deletes} delete(s)",
        damage.bytes_cut,
        damage.path.display(),
        damage.offset,
        damage.later_segments.len(),
        damage.later_bytes
    )
}

fn report_skip(skipped: Result<skip::Skipped, String>, dry_run: bool) -> ExitCode {
    let skipped = match skipped {
        Ok(skipped) => skipped,
        Err(why) => {
            println!("cannot skip the damaged record: {why}; nothing was changed");
            return ExitCode::FAILURE;
        }
    };
    let verb = if dry_run { "would replace" } else { "replaced" };
    let what = match &skipped.replacement {
        Replacement::Events {
            stream,
            versions,
            positions,
        } => format!(
            "{} event(s) of stream {stream} (versions {}..={}, positions {}..={}) with events \
             of type {LOST_EVENT_TYPE}",
            positions.end - positions.start,
            versions.start,
            versions.end - 1,
            positions.start,
            positions.end - 1
        ),
        Replacement::SyncMark => "a sync mark with one that claims nothing".to_string(),
    };
    println!(
        "{verb} the damaged record at offset {} of {}: {what}",
        skipped.offset,
        skipped.path.display()
    );
    println!("the log is {}", skipped.after);
    match dry_run || skipped.after == "sound" {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

fn report_restore(from: &Path, dir: &Path, restored: &Restored) -> ExitCode {
    let manifest = &restored.manifest;
    println!(
        "restored {} into {}: positions below {} (the backup held positions below {}, \
         written by server {}), {} segment(s), {} record(s) checked",
        from.display(),
        dir.display(),
        restored.position,
        manifest.position,
        manifest.server_version,
        restored.segments,
        restored.records
    );
    if let Some((first, last)) = restored.left_out {
        println!(
            "the append holding positions {first} to {last} reaches past the position asked \
             for and was left out whole: an append is all or nothing"
        );
    }
    ExitCode::SUCCESS
}
