//! Deciding a text: analysis, the pinned-settings check, SQL-level
//! PREPARE/EXECUTE resolved, attribute-notation calls counted as calls, the
//! caller's stated reason, and the policy's decision with approvals.

use super::*;

impl Gate {
    /// Decides without the cache; also says whether the result may be cached
    /// (not when the text prepares, executes or deallocates: those depend on session state).
    pub(super) fn decide_text_uncached(
        &mut self,
        sql: &str,
        protocol: Flavour,
    ) -> (Verdict, Option<Arc<StatementAnalysis>>, bool) {
        // standard_conforming_strings is pinned on (`settings`).
        let analysis = self.analyze(sql, ParseMode::default());
        let analysis = match analysis.as_ref() {
            Ok(a) => a,
            Err(e) => {
                let mut v = self.unparseable(e);
                v.recorded = gatehouse_sql::redact_secrets(sql).map(Arc::from);
                return (v, None, true);
            }
        };
        // What it means must not depend on the pinned settings, should code
        // the gateway cannot see change them unreported (`settings.rs`).
        if let Some(reason) = self.reading_depends_on_settings(sql, analysis) {
            let mut v = self.settings_refusal(reason);
            v.recorded = analysis.redacted.as_deref().map(Arc::from);
            return (v, None, true);
        }
        // The gateway's own statement names (its poisons) are not the client's.
        let reserved = analysis
            .statements
            .iter()
            .filter_map(|st| st.prepares.as_deref())
            .find(|name| name.starts_with(RESERVED_PREFIX));
        if let Some(name) = reserved {
            let mut v = self.refuse(format!(
                "PREPARE {name:?}: statement names beginning with {RESERVED_PREFIX:?} are the \
                 gateway's own; use another name"
            ));
            v.recorded = analysis.redacted.as_deref().map(Arc::from);
            return (v, None, true);
        }
        // Session state: never from the cache (a search path change must be
        // seen each time it runs).
        let cacheable = analysis.statements.iter().all(|st| {
            st.prepares.is_none()
                && st.executes.is_none()
                && st.deallocates.is_none()
                && st
                    .settings
                    .iter()
                    .all(|c| c.name.as_deref().is_some_and(|n| n != "search_path"))
        });
        // EXECUTE of a SQL-level prepared statement is what was prepared.
        let mut resolved: Vec<Arc<StatementAnalysis>> =
            Vec::with_capacity(analysis.statements.len());
        for (i, st) in analysis.statements.iter().enumerate() {
            // A PREPARE earlier in the same string counts too.
            let earlier = st.executes.as_ref().and_then(|name| {
                analysis.statements[..i]
                    .iter()
                    .rev()
                    .find(|p| p.prepares.as_deref() == Some(name.as_str()))
                    .map(|p| Arc::new(p.clone()))
            });
            if let Some(p) = earlier {
                resolved.push(p);
                continue;
            }
            match &st.executes {
                Some(name) => match self.sql_prepared.get(name) {
                    Some(p) => resolved.push(p.clone()),
                    None => {
                        let reason = format!(
                            "EXECUTE {name}: no statement of that name was prepared through the gateway in this session"
                        );
                        return (
                            self.refuse_reason(Decided::Deny, Vec::new(), reason),
                            None,
                            false,
                        );
                    }
                },
                None => resolved.push(Arc::new(st.clone())),
            }
        }
        // A qualified name the function list cannot place may be a function
        // created since it was read: a newer list (read by a later login)
        // may know it; otherwise it is refused until one does.
        let path: &[String] = match &self.search_path {
            SearchPath::Known(p) => p,
            SearchPath::Unknown => &[],
        };
        let unknown_in = |names: &functions::FunctionNames| -> Option<gatehouse_sql::AttributeUse> {
            resolved
                .iter()
                .find_map(|st| names.unknown_attribute(st, path))
                .cloned()
        };
        let mut unknown = unknown_in(&self.function_names);
        if unknown.is_some() {
            if let Some(newer) = self.settings.functions.current(&self.connection) {
                unknown = unknown_in(&newer);
                self.function_names = newer;
            }
        }
        if let Some(a) = unknown {
            let reason = format!(
                "`{}.{}`: `{}` is neither a column nor a function the gateway knows of in the \
                 database of connection {} (its list is read at login, at most {} s old, and \
                 again after a schema change through the gateway); PostgreSQL would call a \
                 function of that name created since. If it was created just now, reconnect in \
                 {} s",
                a.qualifier.as_deref().unwrap_or_default(),
                a.name,
                a.name,
                self.connection,
                functions::FUNCTIONS_TTL.as_secs(),
                functions::FUNCTIONS_TTL.as_secs(),
            );
            let mut v = self.refuse(reason);
            v.recorded = analysis.redacted.as_deref().map(Arc::from);
            return (v, None, false);
        }
        // Qualified names that are function calls count as the calls.
        let catalog_first = match &self.search_path {
            SearchPath::Known(path) => path
                .iter()
                .position(|s| s == "pg_catalog")
                .is_none_or(|i| i == 0),
            SearchPath::Unknown => false,
        };
        let mut resolved: Vec<Arc<StatementAnalysis>> = resolved
            .into_iter()
            .map(|st| self.function_names.resolve(st, catalog_first))
            .collect();
        let mut cacheable = cacheable;
        for change in analysis.statements.iter().flat_map(|s| s.settings.iter()) {
            if change.name.as_deref() == Some(REASON_VARIABLE) {
                // Session state: decided every time, never from the cache.
                cacheable = false;
                self.reason = match &change.value {
                    SettingValue::Literal(v) => Some(v.chars().take(MAX_REASON).collect()),
                    _ => None,
                };
            }
        }
        let (mut verdict, approvable) = if protocol == Flavour::Simple {
            self.decide_approvable(&resolved, protocol, || {
                self.fingerprint(Flavour::Simple, sql, &[])
            })
        } else {
            // A Parse: approval is decided at each Execute, with its parameters.
            let v = self.decide(&resolved, protocol);
            let review = v.record.decision == Decided::Review;
            (v, review)
        };
        // Whether an approval covers it changes from one run to the next.
        if approvable {
            cacheable = false;
        }
        if verdict.refusal.is_none() {
            for (i, st) in analysis.statements.iter().enumerate() {
                // A PREPARE counts once the server did it (the name may be taken, or
                // an earlier statement fail); a DEALLOCATE forgets at once, the safe side.
                if st.prepares.is_some() {
                    verdict.sql_prepares.push((i, Arc::new(st.clone())));
                }
                if let Some(name) = &st.deallocates {
                    verdict.deallocates.push(name.clone());
                }
                match st.operation.as_str() {
                    "discard" => {
                        verdict.deallocates.push(None);
                        verdict.changes_portals = true;
                    }
                    "declare_cursor" | "close_portal" => verdict.changes_portals = true,
                    _ => {}
                }
            }
        }
        if verdict.refusal.is_none() {
            let path = self.path_after(&resolved);
            if *path != self.search_path {
                let path = path.into_owned();
                self.search_path = path;
                self.path_generation += 1;
                // Cached verdicts were decided under the old path.
                self.verdicts = Default::default();
            }
        }
        verdict.recorded = analysis.redacted.as_deref().map(Arc::from);
        let single = (resolved.len() == 1).then(|| resolved.swap_remove(0));
        (verdict, single, cacheable)
    }

    /// The policy's decision on analyzed statements; `approved` when a
    /// human approved exactly these.
    pub(super) fn decision(
        &self,
        statements: &[Arc<StatementAnalysis>],
        protocol: Flavour,
        approved: bool,
    ) -> Decision {
        let refs: Vec<&StatementAnalysis> = statements.iter().map(|s| s.as_ref()).collect();
        let path = self.path_after(statements);
        let search_path: &[String] = match path.as_ref() {
            SearchPath::Known(schemas) => schemas,
            SearchPath::Unknown => {
                let unqualified = statements
                    .iter()
                    .flat_map(|s| s.actions.iter())
                    .filter_map(|a| a.table.as_ref())
                    .find(|t| t.schema.is_none());
                if let Some(t) = unqualified {
                    return Decision::Deny {
                        reason: format!(
                            "`{}` is not schema-qualified, and search_path was set to a value the \
                             gateway could not read, so it cannot tell which table that is; write \
                             schema.{}",
                            t.name, t.name
                        ),
                        policies: Vec::new(),
                    };
                }
                &[]
            }
        };
        let (engine, _) = self.settings.policy.current();
        engine.decide_statements(&StatementRequest {
            identity: &self.identity,
            connection: &self.connection,
            client_ip: self.client_ip,
            now: Timestamp::now(),
            protocol: protocol.as_str(),
            approved,
            statements: &refs,
            search_path,
        })
    }
}
