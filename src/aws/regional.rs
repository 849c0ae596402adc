//! One SDK client per region, made on first use and shared: clients are
//! cheap handles over one HTTP connection pool, and every call names its
//! region.

use std::collections::HashMap;
use std::sync::Mutex;

/// The clients of one service (and one retry setting), by region.
pub(super) struct PerRegion<C> {
    clients: Mutex<HashMap<String, C>>,
}

impl<C: Clone> PerRegion<C> {
    pub(super) fn new() -> Self {
        PerRegion {
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `region`, made with `make` the first time.
    pub(super) fn get(&self, region: &str, make: impl FnOnce(aws_config::Region) -> C) -> C {
        let mut clients = self.clients.lock().expect("client cache poisoned");
        clients
            .entry(region.to_owned())
            .or_insert_with(|| make(aws_config::Region::new(region.to_owned())))
            .clone()
    }

    /// Forgets `region`'s client; calls holding a clone of it finish normally.
    pub(super) fn release(&self, region: &str) {
        self.clients
            .lock()
            .expect("client cache poisoned")
            .remove(region);
    }
}
