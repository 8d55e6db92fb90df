//! Every event id in the log and its position, for idempotent retries. Only the writer
//! uses them, so they live apart from the index and its lock.
//!
//! The ids of the active segment are in memory. With an index on disk (`disk.rs`),
//! those of a segment are handed to the ingester when it is sealed, and kept in memory
//! until the ingester says they are on disk; a look-up asks memory first, newest
//! first, then the disk (whose filter rules out most new ids without a read). Without one (stores on a simulated file system), every id
//! stays in memory, as the index was before it had a disk.
//!
//! An append claims its ids in one probe each (`claim`): in the common case, all new,
//! that is the look-up and the insert at once.

use super::disk::{Checkpoint, IdMap};
use super::ingest::Ingester;
use crate::store::error::StoreError;
use crate::store::types::EventData;
use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use uuid::Uuid;

/// The writer's event ids.
#[derive(Debug, Default)]
pub struct EventIds {
    /// The ids of the active segment (all of them, without an index on disk).
    active: IdMap,
    /// Sealed segments whose ids are not on disk yet, oldest first.
    sealed: VecDeque<(Checkpoint, Arc<IdMap>)>,
    ingester: Option<Ingester>,
    /// Where the ids on disk end: those of every event before this position are
    /// there, those after it in memory.
    on_disk_end: u64,
}

impl EventIds {
    /// Ids with an index on disk behind them: `sealed` are the ids of segments the
    /// disk does not hold yet, oldest first, each with its checkpoint (they go to the
    /// ingester now), and `active` those of the active segment.
    /// `on_disk_end` is where the ids already on disk end (the checkpoint's end).
    pub fn on_disk(
        ingester: Ingester,
        on_disk_end: u64,
        sealed: Vec<(Checkpoint, IdMap)>,
        active: IdMap,
    ) -> EventIds {
        let mut ids = EventIds {
            active,
            sealed: VecDeque::new(),
            ingester: Some(ingester),
            on_disk_end,
        };
        for (checkpoint, map) in sealed {
            ids.hand_over(checkpoint, Arc::new(map), false);
        }
        ids
    }

    /// What a scavenge tells the index on disk, if there is one.
    pub fn rewrites(&self) -> Option<super::ingest::Rewrites> {
        self.ingester.as_ref()?.rewrites()
    }

    /// The index on disk, for readers, if there is one.
    pub fn index_db(&self) -> Option<std::sync::Weak<super::disk::IndexDb>> {
        self.ingester.as_ref().map(Ingester::db_weak)
    }

    /// The index on disk, for the writer's own look-ups, if there is one.
    pub fn disk(&self) -> Option<&super::disk::IndexDb> {
        self.ingester.as_ref().map(Ingester::db)
    }

    /// The last segment whose ids (and records) the index on disk holds, if any.
    pub fn on_disk_through(&self) -> Option<u32> {
        self.ingester.as_ref()?.ingested_through()
    }

    /// The rewritten segments the index on disk holds as they are now, each with the id
    /// of its file then ([`Ingester::take_reingested`]).
    pub fn take_reingested(&self) -> Vec<(u32, u32)> {
        self.ingester
            .as_ref()
            .map_or_else(Vec::new, Ingester::take_reingested)
    }

    /// Whether [`EventIds::take_reingested`] has, or may soon have, something.
    pub fn reingesting(&self) -> bool {
        self.ingester.as_ref().is_some_and(Ingester::reingesting)
    }

    /// Ids kept in memory only.
    pub fn in_memory(ids: IdMap) -> EventIds {
        EventIds {
            active: ids,
            ..EventIds::default()
        }
    }

    /// The position of the event with `id`, if the log holds it (or the batch being
    /// decided does).
    pub fn get(&self, id: &Uuid) -> Result<Option<u64>, StoreError> {
        if let Some(&position) = self.active.get(id) {
            return Ok(Some(position));
        }
        elsewhere(&self.sealed, self.ingester.as_ref(), id)
    }

    /// Puts each id of `events` in at the position it would take from
    /// `first_position`, if none of them is known yet, and says so. If one is, takes
    /// out those it put in and returns false.
    pub fn claim(&mut self, events: &[EventData], first_position: u64) -> Result<bool, StoreError> {
        self.drop_ingested();
        for (i, (position, event)) in (first_position..).zip(events).enumerate() {
            let known = match self.active.entry(event.id) {
                Entry::Occupied(_) => Ok(true),
                Entry::Vacant(slot) => {
                    match elsewhere(&self.sealed, self.ingester.as_ref(), &event.id) {
                        Ok(None) => {
                            slot.insert(position);
                            Ok(false)
                        }
                        Ok(Some(_)) => Ok(true),
                        Err(e) => Err(e),
                    }
                }
            };
            if !matches!(known, Ok(false)) {
                self.release(&events[..i]);
                return known.map(|_| false);
            }
        }
        Ok(true)
    }

    /// Takes the ids of `events` out again (an append that is not going ahead).
    pub fn release(&mut self, events: &[EventData]) {
        for event in events {
            self.active.remove(&event.id);
        }
    }

    /// Makes `id` name the event at `position` from now on.
    pub fn insert(&mut self, id: Uuid, position: u64) {
        self.active.insert(id, position);
    }

    /// Forgets what this segment said of `id` (its write failed); what sealed segments
    /// and the disk say of it stays.
    pub fn remove(&mut self, id: &Uuid) {
        self.active.remove(id);
    }

    /// The active segment was sealed, durably and with every group in it answered:
    /// its ids go to the ingester, and the next segment's start empty. Waits while the
    /// ingester is too far behind (`ingest.rs`).
    pub fn sealed(&mut self, checkpoint: Checkpoint) {
        if self.ingester.is_none() {
            return;
        }
        let ids = std::mem::take(&mut self.active);
        self.hand_over(checkpoint, Arc::new(ids), true);
        if let Some(ingester) = &self.ingester {
            ingester.wait_for_backlog();
        }
        self.drop_ingested();
    }

    fn hand_over(&mut self, checkpoint: Checkpoint, ids: Arc<IdMap>, sealed_by_writer: bool) {
        if let Some(ingester) = &self.ingester {
            ingester.ingest(checkpoint, ids.clone(), sealed_by_writer);
            self.sealed.push_back((checkpoint, ids));
        }
    }

    /// Lets go of the sealed segments' ids that are on disk now.
    fn drop_ingested(&mut self) {
        let Some(through) = self.ingester.as_ref().and_then(Ingester::ingested_through) else {
            return;
        };
        while let Some((checkpoint, _)) = self.sealed.front()
            && checkpoint.segment <= through
        {
            self.on_disk_end = checkpoint.end_position;
            self.sealed.pop_front();
        }
    }

    /// About how many ids are held in memory when the log's next position is
    /// `next_position`: derived from positions, as counting the maps' entries would
    /// cost the writer a pass over every shard.
    pub fn in_memory_count(&self, next_position: u64) -> u64 {
        next_position.saturating_sub(self.on_disk_end)
    }

    /// Waits until the ingester has put every sealed segment it was given on disk (or
    /// failed to): a clean stop leaves the checkpoint at the last sealed segment.
    pub fn finish(&mut self) {
        if let Some(ingester) = self.ingester.take() {
            ingester.finish();
        }
    }
}

/// What the sealed segments not yet on disk, newest first, then the disk say of `id`.
fn elsewhere(
    sealed: &VecDeque<(Checkpoint, Arc<IdMap>)>,
    ingester: Option<&Ingester>,
    id: &Uuid,
) -> Result<Option<u64>, StoreError> {
    if let Some(&position) = sealed.iter().rev().find_map(|(_, ids)| ids.get(id)) {
        return Ok(Some(position));
    }
    match ingester {
        Some(ingester) => ingester.db().event_position(*id),
        None => Ok(None),
    }
}
