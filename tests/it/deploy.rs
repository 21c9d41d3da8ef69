//! The Kubernetes manifest: valid against the Kubernetes schema, and its pod failure
//! policy agrees with kpipe's exit codes.

use kpipe::error::exit_code;

use crate::common::{python, root, text};

const MANIFEST: &str = "deploy/kubernetes/cronjob.yaml";

#[test]
fn the_cronjob_is_a_valid_kubernetes_manifest() {
    let validator = python().with_file_name("kubernetes-validate");
    let output = std::process::Command::new(&validator)
        .args(["--strict", MANIFEST])
        .current_dir(root())
        .output()
        .expect("kubernetes-validate runs: run the tests with scripts/test.sh, which installs it");
    assert!(
        output.status.success(),
        "{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert!(text(&output.stdout).contains("passed for resource cronjob/kpipe-marketing"));
}

#[test]
fn the_pod_failure_policy_retries_exactly_what_a_retry_can_fix() {
    let manifest: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root().join(MANIFEST)).unwrap()).unwrap();
    let rules = &manifest["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"];
    let codes = |action: &str| -> Vec<u64> {
        let rule = rules
            .as_sequence()
            .unwrap()
            .iter()
            .find(|r| r["action"] == action && r["onExitCodes"].is_mapping());
        let values = &rule.unwrap_or_else(|| panic!("no {action} rule"))["onExitCodes"]["values"];
        values
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let fail: Vec<u64> = [
        exit_code::USAGE,
        exit_code::BAD_DATA,
        exit_code::INTERNAL,
        exit_code::BAD_CONFIG,
    ]
    .map(u64::from)
    .to_vec();
    let retry: Vec<u64> = [exit_code::TRANSIENT, exit_code::INTERRUPTED]
        .map(u64::from)
        .to_vec();
    assert_eq!(codes("FailJob"), fail);
    assert_eq!(codes("Count"), retry);
}
