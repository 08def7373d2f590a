//! `examples/kubernetes/`, checked offline (no kubectl, no cluster): every
//! document is a valid object of its kind for the oldest and newest
//! Kubernetes the README names (the kinds' JSON schemas, strictly, through
//! `tests/support/k8s_check.py`), plus the rules the API server enforces
//! that the schemas do not carry; the manifests hold together (each
//! Secret key they read exists, each `$(VAR)` is defined); and each
//! container runs a command line barge's own parser accepts. The second
//! test proves the check fails on real mistakes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use clap::Parser;
use serde_json::Value;

use crate::support::repo;

/// The Kubernetes versions the README promises (podFailurePolicy is GA
/// from 1.31).
const VERSIONS: &str = "1.31.0,1.37.0";

fn examples() -> PathBuf {
    repo().join("examples/kubernetes")
}

/// Starts the schema check of every manifest in `dir`.
fn start_schema_check(dir: &Path) -> Child {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml")).collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    let python = std::env::var("BARGE_TEST_PYTHON").expect("BARGE_TEST_PYTHON (source the env file tests/services.sh start writes)");
    Command::new(python).arg(repo().join("tests/support/k8s_check.py")).arg(VERSIONS).args(&files).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// The documents of a started check, or what is wrong with them.
fn finish_check(child: Child) -> Result<Vec<(String, Value)>, String> {
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let docs: Vec<Value> = serde_json::from_slice(&out.stdout).map_err(|e| format!("the schema check's output does not read: {e}"))?;
    let docs: Vec<(String, Value)> = docs.into_iter().map(|d| (d["file"].as_str().unwrap_or("?").rsplit('/').next().unwrap_or("?").to_string(), d["doc"].clone())).collect();
    let problems = rules(&docs);
    if problems.is_empty() {
        Ok(docs)
    } else {
        Err(problems.join("\n"))
    }
}

/// A container of a Job: where it is, and its barge command line with
/// every `$(VAR)` replaced by the value its env gives.
struct Run {
    at: String,
    args: Vec<String>,
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// What the API server checks and the schemas leave out, and how the
/// manifests fit together. Each problem names its file and field.
fn rules(docs: &[(String, Value)]) -> Vec<String> {
    let mut problems = Vec::new();
    // Secret name → key → value (stringData or base64 data).
    let mut secrets: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (_, d) in docs.iter().filter(|(_, d)| d["kind"] == "Secret") {
        let keys = secrets.entry(text(&d["metadata"]["name"]).to_string()).or_default();
        for field in ["stringData", "data"] {
            if let Some(m) = d[field].as_object() {
                keys.extend(m.iter().map(|(k, v)| (k.clone(), text(v).to_string())));
            }
        }
    }
    for (file, d) in docs.iter().filter(|(_, d)| d["kind"] == "Job") {
        let at = format!("{file}: Job {}", text(&d["metadata"]["name"]));
        let spec = &d["spec"];
        let mode = spec["completionMode"].as_str().unwrap_or("NonIndexed");
        if !["NonIndexed", "Indexed"].contains(&mode) {
            problems.push(format!("{at}: spec.completionMode {mode:?}: Kubernetes accepts NonIndexed or Indexed"));
        }
        if mode == "Indexed" {
            if spec["completions"].as_u64().is_none() {
                problems.push(format!("{at}: an Indexed Job needs spec.completions"));
            } else if spec["parallelism"] != spec["completions"] {
                problems.push(format!("{at}: spec.parallelism {} and spec.completions {} differ: N workers run at once, one per index", spec["parallelism"], spec["completions"]));
            }
        } else if !spec["backoffLimitPerIndex"].is_null() {
            problems.push(format!("{at}: spec.backoffLimitPerIndex needs completionMode: Indexed"));
        }
        let pod = &spec["template"]["spec"];
        let restart = pod["restartPolicy"].as_str().unwrap_or("");
        if !["Never", "OnFailure"].contains(&restart) {
            problems.push(format!("{at}: spec.template.spec.restartPolicy {restart:?}: a Job's pods take Never or OnFailure"));
        } else if !spec["podFailurePolicy"].is_null() && restart != "Never" {
            problems.push(format!("{at}: spec.podFailurePolicy needs restartPolicy: Never"));
        }
        for c in pod["containers"].as_array().into_iter().flatten() {
            match container_run(&at, c, &secrets) {
                Ok(run) => problems.extend(barge_accepts(&run).err()),
                Err(mut p) => problems.append(&mut p),
            }
        }
    }
    problems
}

/// A container's command line with its `$(VAR)`s replaced, or what is
/// wrong with its env.
fn container_run(job: &str, c: &Value, secrets: &BTreeMap<String, BTreeMap<String, String>>) -> Result<Run, Vec<String>> {
    let at = format!("{job}, container {}", text(&c["name"]));
    let mut problems = Vec::new();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let name = text(&e["name"]).to_string();
        let value = if let Some(v) = e["value"].as_str() {
            Some(v.to_string())
        } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
            let (secret, key) = (text(&r["name"]), text(&r["key"]));
            let found = secrets.get(secret).and_then(|s| s.get(key)).cloned();
            if found.is_none() {
                problems.push(format!("{at}: env {name} reads key {key:?} of Secret {secret:?}, which the Secret in this directory does not have"));
            }
            found
        } else {
            None
        };
        env.insert(name, value.unwrap_or_default());
    }
    if !env.contains_key("BARGE_COORDINATOR_PASSWORD") {
        problems.push(format!("{at}: no BARGE_COORDINATOR_PASSWORD in env: a worker cannot log in to the coordinator"));
    }
    let mut args = Vec::new();
    for a in c["args"].as_array().into_iter().flatten() {
        let (expanded, undefined) = expand(text(a), &env);
        for name in undefined {
            problems.push(format!("{at}: args refer to $({name}), which env does not define (Kubernetes would pass it on as written)"));
        }
        args.push(expanded);
    }
    if problems.is_empty() {
        Ok(Run { at, args })
    } else {
        Err(problems)
    }
}

/// `arg` with each `$(NAME)` replaced as Kubernetes does, and the names
/// `env` does not define.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let (mut out, mut undefined, mut rest) = (String::new(), Vec::new(), arg);
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        let name = &after[..end];
        match env.get(name) {
            Some(v) => out.push_str(v),
            None => {
                undefined.push(name.to_string());
                out.push_str(&rest[i..i + 3 + end]);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    (out, undefined)
}

/// The command line parses with barge's own definition, shares its work
/// through a coordinator, and names URLs barge accepts (no password in them).
fn barge_accepts(run: &Run) -> Result<barge::cli::Command, String> {
    let cli = barge::cli::Cli::try_parse_from(std::iter::once("barge".to_string()).chain(run.args.iter().cloned())).map_err(|e| format!("{}: barge refuses its args {:?}: {}", run.at, run.args, e.render()))?;
    let urls: Vec<String> = match &cli.command {
        barge::cli::Command::Worker(w) => vec![w.coordinator.clone()],
        barge::cli::Command::Migrate(m) => {
            let Some(c) = m.coordinator.coordinator.clone() else { return Err(format!("{}: migrate without --coordinator shares nothing with the workers", run.at)) };
            vec![m.source.clone(), m.target.clone(), c]
        }
        barge::cli::Command::Validate(v) => {
            let Some(c) = v.shared.coordinator.coordinator.clone() else { return Err(format!("{}: validate without --coordinator shares nothing with the workers", run.at)) };
            vec![v.source.clone(), v.target.clone(), c]
        }
        other => return Err(format!("{}: runs {other:?}, not a worker of a shared task", run.at)),
    };
    for u in urls {
        barge::endpoint::Endpoint::parse(&u).map_err(|e| format!("{}: {u}: {e}", run.at))?;
    }
    Ok(cli.command)
}

#[test]
fn the_kubernetes_examples_are_valid_and_run_a_shared_task() {
    let docs = finish_check(start_schema_check(&examples())).unwrap_or_else(|e| panic!("examples/kubernetes:\n{e}"));
    let kinds: BTreeSet<(String, String)> = docs.iter().map(|(f, d)| (f.clone(), text(&d["kind"]).to_string())).collect();
    let want: BTreeSet<(String, String)> = [("job.yaml", "Job"), ("task.yaml", "Job"), ("secret.example.yaml", "Secret")].iter().map(|(f, k)| (f.to_string(), k.to_string())).collect();
    assert_eq!(kinds, want);
    let secrets: BTreeMap<String, BTreeMap<String, String>> = docs
        .iter()
        .filter(|(_, d)| d["kind"] == "Secret")
        .map(|(_, d)| (text(&d["metadata"]["name"]).to_string(), d["stringData"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), text(v).to_string())).collect()))
        .collect();
    let command = |file: &str| {
        let (_, d) = docs.iter().find(|(f, _)| f == file).unwrap();
        let run = container_run(file, &d["spec"]["template"]["spec"]["containers"][0], &secrets).unwrap_or_else(|p| panic!("{p:?}"));
        (d.clone(), barge_accepts(&run).unwrap())
    };
    // The workers: an Indexed Job of `barge worker` that waits for the task.
    let (job, workers) = command("job.yaml");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let barge::cli::Command::Worker(w) = workers else { panic!("job.yaml runs barge worker") };
    assert!(w.wait >= 60 && w.task == "shop-2026-12", "{w:?}");
    // The task: `migrate --coordinator`, the same task name.
    let (_, first) = command("task.yaml");
    let barge::cli::Command::Migrate(m) = first else { panic!("task.yaml runs barge migrate") };
    assert_eq!(m.coordinator.task.as_deref(), Some("shop-2026-12"));
    // The README this directory has, and the top-level one links to it;
    // the validation it shows runs in task.yaml's container as written.
    let readme = std::fs::read_to_string(examples().join("README.md")).unwrap();
    let start = readme.find("args: [validate").expect("the README shows a validation's args");
    let flow = &readme[start + "args: [".len()..start + readme[start..].find(']').unwrap()];
    let (_, task) = docs.iter().find(|(f, _)| f == "task.yaml").unwrap();
    let mut container = task["spec"]["template"]["spec"]["containers"][0].clone();
    container["args"] = flow.split(',').map(|a| Value::from(a.trim().trim_matches('"'))).collect();
    let run = container_run("README.md", &container, &secrets).unwrap_or_else(|p| panic!("{p:?}"));
    let barge::cli::Command::Validate(v) = barge_accepts(&run).unwrap() else { panic!("the README's validation runs barge validate") };
    assert_eq!((v.shared.coordinator.task.as_deref(), v.shared.range_rows), (Some("shop-2026-12"), 200_000));
    assert!(std::fs::read_to_string(repo().join("README.md")).unwrap().contains("(examples/kubernetes/README.md)"));
}

/// A mistake made in a copy of the examples: the file, what is replaced
/// in it and with what, and what the failure must name.
type Mistake<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn the_kubernetes_check_fails_on_real_mistakes() {
    let mistakes: &[Mistake] = &[
        ("job.yaml", &[("completionMode: Indexed", "completionMode: Indexd")], "completionMode \"Indexd\""),
        // A field at the wrong level: the pod template's spec has no parallelism.
        ("job.yaml", &[("  parallelism: 4\n", ""), ("      restartPolicy: Never\n", "      restartPolicy: Never\n      parallelism: 4\n")], "'parallelism' was unexpected"),
        ("job.yaml", &[("  completions: 4\n", "  completion: 4\n")], "'completion' was unexpected"),
        ("job.yaml", &[("  completions: 4\n", "  completions: four\n")], "spec.completions"),
        ("job.yaml", &[("  parallelism: 4\n", "  parallelism: 3\n")], "spec.parallelism 3 and spec.completions 4 differ"),
        ("task.yaml", &[("      restartPolicy: Never\n", "      restartPolicy: Always\n")], "restartPolicy \"Always\""),
        ("job.yaml", &[("key: coordinator-url}", "key: coordinator-uri}")], "\"coordinator-uri\""),
        ("job.yaml", &[("$(BARGE_TASK)", "$(BARGE_TSK)")], "$(BARGE_TSK)"),
        ("job.yaml", &[("            - --max-rate\n", "            - --max-rates\n")], "--max-rates"),
        ("task.yaml", &[("            - --coordinator\n            - $(COORDINATOR_URL)\n            - --task\n            - $(BARGE_TASK)\n", "")], "without --coordinator"),
    ];
    let mut dirs = Vec::new();
    for (file, edits, _) in mistakes {
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(examples()).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
        let path = dir.path().join(file);
        let mut yaml = std::fs::read_to_string(&path).unwrap();
        for (from, to) in edits.iter() {
            assert!(yaml.contains(from), "{file} no longer has {from:?}: update this test");
            yaml = yaml.replacen(from, to, 1);
        }
        std::fs::write(&path, yaml).unwrap();
        let child = start_schema_check(dir.path());
        dirs.push((dir, child));
    }
    for ((_dir, child), (file, edits, named)) in dirs.into_iter().zip(mistakes) {
        match finish_check(child) {
            Ok(_) => panic!("{file} with {edits:?} passed the check"),
            Err(e) => assert!(e.contains(named), "{file} with {edits:?}: the failure names {named:?}:\n{e}"),
        }
    }
}
