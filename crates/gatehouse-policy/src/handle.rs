//! The gateway's current policy, swappable at run time (SIGHUP, `gatehouse policy reload`).

use crate::{PolicyEngine, PolicyLoadError, PolicyMode};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The policy in force, its files and mode. A reload that fails validation
/// keeps the policy in force.
pub struct PolicyHandle {
    current: RwLock<Arc<PolicyEngine>>,
    generation: AtomicU64,
    paths: Vec<PathBuf>,
    mode: PolicyMode,
}

impl PolicyHandle {
    /// Wraps a loaded engine; `paths` are re-read on reload.
    pub fn new(engine: PolicyEngine, paths: Vec<PathBuf>, mode: PolicyMode) -> Self {
        Self {
            current: RwLock::new(Arc::new(engine)),
            generation: AtomicU64::new(1),
            paths,
            mode,
        }
    }

    /// The engine in force and its generation (bumped by every successful reload).
    pub fn current(&self) -> (Arc<PolicyEngine>, u64) {
        // Readers only clone an Arc; a poisoned lock still holds a valid engine.
        let engine = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (engine, self.generation.load(Ordering::Acquire))
    }

    /// The generation in force.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Enforce or audit.
    pub fn mode(&self) -> PolicyMode {
        self.mode
    }

    /// The policy files.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Re-reads and validates the files; swaps them in only if valid.
    /// Blocking file I/O: call from a blocking context.
    pub fn reload(&self) -> Result<Arc<PolicyEngine>, PolicyLoadError> {
        let engine = Arc::new(PolicyEngine::load(&self.paths)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = engine.clone();
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(engine)
    }
}
