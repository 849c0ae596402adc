//! The layering rule of docs/ARCHITECTURE.md, as data and as a test: every
//! module imports only modules of its own layer or below. A new module must
//! be given a layer here, or the test fails.

/// Each top-level module and its layer, from the bottom (0) up.
pub const LAYERS: &[(&str, u8)] = &[
    // 0 model: plain data and helpers, no I/O.
    ("model", 0),
    ("clock", 0),
    ("progress", 0),
    ("markdown", 0),
    ("text", 0),
    // 1 AWS: our traits over AWS, the SDK behind them.
    ("aws", 1),
    // 2 domain: what a scan found, and the pure rules over it.
    ("report", 2),
    ("readiness", 2),
    ("container", 2),
    ("filter", 2),
    ("launch", 2),
    ("agents", 2),
    ("trail", 2),
    ("sources", 2),
    // 3 store: SQLite (scans, the journal, leases).
    ("store", 3),
    // 4 engine: the work (reads AWS, computes, writes the journal).
    ("fanout", 4),
    ("scan", 4),
    ("usage", 4),
    ("cloudtrail", 4),
    ("findings", 4),
    ("plan", 4),
    ("groups", 4),
    ("notify", 4),
    ("policy", 4),
    ("runs", 4),
    ("rollout", 4),
    // 5 application: one operation per user job, typed results.
    ("ops", 5),
    // 6 interface: commands, renderers, the printer, errors, exit codes.
    ("commands", 6),
    ("output", 6),
    ("printer", 6),
    ("error", 6),
    ("exit_codes", 6),
    // 7 edge: clap types, their resolution, main.
    ("cli", 7),
    ("settings", 7),
    ("main", 7),
    ("layers", 7),
];

#[cfg(test)]
mod tests {
    use super::LAYERS;
    use std::path::Path;

    fn layer(module: &str) -> Option<u8> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
    }

    /// The `crate::x` paths a line names, as top-level module names.
    fn named(line: &str) -> Vec<&str> {
        line.match_indices("crate::")
            .map(|(i, _)| {
                let rest = &line[i + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .collect()
    }

    #[test]
    fn every_module_imports_only_its_own_layer_or_below() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
        let mut problems = Vec::new();
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            // Test-only files (fakes, test suites) may reach anywhere.
            if matches!(rel.to_str(), Some("aws/fake.rs" | "runs/tests.rs")) {
                continue;
            }
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            let module = top.trim_end_matches(".rs");
            let Some(own) = layer(module) else {
                problems.push(format!("{}: module `{module}` has no layer", rel.display()));
                continue;
            };
            let text = std::fs::read_to_string(&file).unwrap();
            // Unit tests sit at the end of a file and may use fakes.
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for name in named(line) {
                    match layer(name) {
                        Some(l) if l <= own => {}
                        Some(l) => problems.push(format!(
                            "{}:{}: `{module}` (layer {own}) uses `{name}` (layer {l})",
                            rel.display(),
                            n + 1
                        )),
                        None => problems.push(format!(
                            "{}:{}: `{name}` has no layer",
                            rel.display(),
                            n + 1
                        )),
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
