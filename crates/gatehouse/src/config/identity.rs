//! `[identity]`: trusted OIDC issuers (`[[identity.oidc]]`). What each key
//! means and the presets live in `gatehouse_identity::oidc`.

use gatehouse_identity::oidc::{IssuerSettings, IssuerSpec};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentitySection {
    /// Kept as TOML until resolved, so each table's problems name its index.
    #[serde(default)]
    oidc: Vec<toml::Value>,
}

impl IdentitySection {
    /// Checks every issuer; `None` when any is wrong (each problem reported).
    pub(super) fn resolve(
        &self,
        path: &dyn Fn(&str) -> PathBuf,
        problem: &mut dyn FnMut(String, String),
    ) -> Option<Vec<IssuerSettings>> {
        let mut ok = true;
        let mut out: Vec<IssuerSettings> = Vec::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        let mut issuers: HashMap<String, usize> = HashMap::new();
        for (i, table) in self.oidc.iter().enumerate() {
            let key = |field: &str| format!("identity.oidc[{i}].{field}");
            let spec = match IssuerSpec::deserialize(table.clone()) {
                Ok(s) => s,
                Err(e) => {
                    ok = false;
                    problem(
                        format!("identity.oidc[{i}]"),
                        e.message().trim().to_string(),
                    );
                    continue;
                }
            };
            match spec.resolve(path) {
                Err(problems) => {
                    ok = false;
                    for (field, reason) in problems {
                        problem(key(field), reason);
                    }
                }
                Ok(s) => {
                    if let Some(j) = names.insert(s.name.clone(), i) {
                        ok = false;
                        problem(
                            key("name"),
                            format!("{:?} is also the name of identity.oidc[{j}]; names must be unique (they prefix subjects and groups)", s.name),
                        );
                    }
                    for iss in &s.accepted_issuers {
                        if let Some(j) = issuers.insert(iss.clone(), i) {
                            ok = false;
                            problem(
                                key("issuer"),
                                format!("{iss:?} is also accepted by identity.oidc[{j}]; a token's iss must select exactly one issuer"),
                            );
                        }
                    }
                    out.push(s);
                }
            }
        }
        ok.then_some(out)
    }
}
