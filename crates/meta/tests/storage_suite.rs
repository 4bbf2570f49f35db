//! Goal: prove the on-disk log store and state machine meet openraft's storage contract.
//! Method: run `openraft::testing::Suite` (every storage test openraft ships) against
//! `LogStore` and `StateMachineStore` opened on a fresh temporary directory for each test.

use openraft::testing::StoreBuilder;
use openraft::testing::Suite;
use openraft::StorageError;
use sluice_meta::LogStore;
use sluice_meta::NodeId;
use sluice_meta::StateMachineStore;
use sluice_meta::TypeConfig;
use tempfile::TempDir;

struct DiskStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for DiskStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = TempDir::new().expect("temporary directory");
        let log_store = LogStore::open(&dir.path().join("log")).expect("open log store");
        let state_machine = StateMachineStore::open(&dir.path().join("snapshot")).expect("open state machine");
        Ok((dir, log_store, state_machine))
    }
}

#[test]
fn openraft_storage_suite_passes_on_disk_stores() {
    Suite::test_all(DiskStoreBuilder).expect("openraft storage suite");
}
