//! The hash jobs of a layer read in parallel, and the rule that parks a
//! large file until another file of the image has its size.

use std::collections::HashMap;

use super::parallel::Job;

/// Jobs waiting, how many layers are still being read for theirs, and
/// the large files met so far by size.
pub(super) struct Queue {
    pub(super) jobs: Vec<Job>,
    pub(super) reading: usize,
    pub(super) sizes: HashMap<u64, Met>,
}

/// Large files of one size met so far.
pub(super) enum Met {
    /// One, waiting to be hashed if another comes.
    Parked(Job),
    /// One, hashed in line.
    Read,
    /// More: every job of this size is hashed.
    Many,
}

impl Queue {
    /// A job for a file of its size, to hash now or to park; true if jobs
    /// were added.
    pub(super) fn offer(&mut self, job: Job, park: bool) -> bool {
        if !park {
            self.jobs.push(job);
            return true;
        }
        let size = job.size;
        match self.sizes.insert(size, Met::Many) {
            None => {
                self.sizes.insert(size, Met::Parked(job));
                false
            }
            Some(Met::Parked(first)) => {
                self.jobs.extend([first, job]);
                true
            }
            Some(Met::Read | Met::Many) => {
                self.jobs.push(job);
                true
            }
        }
    }

    /// A file of `size` hashed in line; true if a parked job was released.
    pub(super) fn read(&mut self, size: u64) -> bool {
        match self.sizes.insert(size, Met::Many) {
            None => {
                self.sizes.insert(size, Met::Read);
                false
            }
            Some(Met::Parked(job)) => {
                self.jobs.push(job);
                true
            }
            Some(Met::Read | Met::Many) => false,
        }
    }
}
