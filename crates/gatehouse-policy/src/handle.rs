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
    /// Approval routes the configuration defines; `None`: not checked.
    routes: Option<Vec<String>>,
}

impl PolicyHandle {
    /// Wraps a loaded engine; `paths` are re-read on reload.
    pub fn new(engine: PolicyEngine, paths: Vec<PathBuf>, mode: PolicyMode) -> Self {
        Self {
            current: RwLock::new(Arc::new(engine)),
            generation: AtomicU64::new(1),
            paths,
            mode,
            routes: None,
        }
    }

    /// Makes reloads refuse policies that send statements to an approval
    /// route not in `routes` (start-up checks the first load the same way).
    pub fn with_routes(mut self, routes: Vec<String>) -> Self {
        self.routes = Some(routes);
        self
    }

    /// Problems with `engine`'s `@approval` routes: each one `routes` lacks.
    pub fn undefined_routes(engine: &PolicyEngine, routes: &[String]) -> Vec<(String, String)> {
        let mut missing: Vec<(String, String)> = engine
            .approval_routes()
            .iter()
            .chain(engine.row_cap_routes())
            .filter(|(_, route)| !routes.contains(route))
            .map(|(id, route)| (id.clone(), route.clone()))
            .collect();
        missing.sort();
        missing
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
        if let Some(routes) = &self.routes {
            let missing = Self::undefined_routes(&engine, routes);
            if !missing.is_empty() {
                return Err(PolicyLoadError(
                    missing
                        .into_iter()
                        .map(|(id, route)| crate::PolicyProblem {
                            file: self.paths.first().cloned().unwrap_or_default(),
                            line: None,
                            reason: format!(
                                "policy {id} sends statements to approval route {route:?}, which no [[approval.route]] defines; \
                                 define it in the configuration (and restart) first"
                            ),
                        })
                        .collect(),
                ));
            }
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = engine.clone();
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(engine)
    }
}
