//! The `berth` client, as the real binary, against the real server with its
//! controller on the local cluster: login, apply from a file twice (the
//! second a no-op), `--wait` until Ready, `kubeconfig --merge` and kubectl
//! with it, logs, delete; field errors, approval, exit codes.

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp, spawn_app, spawn_app_on_cluster,
    spawn_app_with_controller,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// One user's machine: a home directory with its own client configuration
/// and kubeconfig, removed at the end.
struct Machine {
    home: PathBuf,
}

impl Machine {
    fn new() -> Self {
        let home =
            std::env::temp_dir().join(format!("berth-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&home).unwrap();
        Self { home }
    }

    fn config(&self) -> PathBuf {
        self.home.join(".config").join("berth").join("config.toml")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BERTH);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `berth args...` with `stdin` as its standard input.
    async fn run_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        command.envs(env.iter().copied()).stdin(Stdio::piped());
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the berth binary runs");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        let output = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("berth {args:?} did not finish within 180 s"))
            .unwrap();
        Run::from(args, output)
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "", &[]).await
    }

    /// Logs in to `app` with a password given on standard input.
    async fn login(&self, app: &TestApp, email: &str, password: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "login",
            app.base.as_str(),
            "--email",
            email,
            "--password-stdin",
        ];
        args.extend(extra);
        self.run_with(&args, &format!("{password}\n"), &[]).await
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.home.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

struct Run {
    args: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(args: &[&str], output: Output) -> Self {
        Self {
            args: args.join(" "),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "berth {} exited {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    fn ok(&self) -> &Self {
        self.expect(0)
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "berth {}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

async fn register(app: &TestApp, email: &str) {
    let response = app.register(&reqwest::Client::new(), email).await;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
}

fn kubectl() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join(".berth/bin/kubectl")
}

#[tokio::test]
async fn login_apply_twice_wait_kubeconfig_kubectl_delete() {
    let app = spawn_app_with_controller().await;
    let machine = Machine::new();
    let id = suffix();
    let email = format!("cli-{id}@example.com");
    register(&app, &email).await;

    // Login keeps a token per server, in a file only the user can read.
    let login = machine.login(&app, &email, PASSWORD, &[]).await;
    login.ok();
    assert!(login.stdout.contains(&email), "{}", login.stdout);
    let config = std::fs::read_to_string(machine.config()).unwrap();
    assert!(config.contains("berth_pat_"), "the token is kept");
    assert!(!config.contains(PASSWORD), "the password is not");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(machine.config())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let me = machine.run(&["whoami", "-o", "json"]).await;
    assert_eq!(me.ok().json()["email"], email.as_str());
    let contexts = machine.run(&["context", "list", "-o", "json"]).await;
    let contexts = contexts.ok().json();
    assert_eq!(contexts["items"][0]["server"], app.base.as_str());
    assert!(
        !contexts.to_string().contains("berth_pat_"),
        "never the token: {contexts}"
    );

    // Apply from a file: created and Ready with --wait, then a no-op (the
    // app's replicas and exposure, left out, are the server's defaults).
    let name = format!("cli-{id}");
    let spec = machine.write(
        "env.yaml",
        &format!(
            "name: {name}\ndescription: made by the CLI test\ntemplate: small\nttl: 24h\napps:\n- name: web\n  image: nginx:1.27\n  port: 8080\n  resources: {{cpu: 100m, memory: 64Mi}}\n"
        ),
    );
    let first = machine
        .run(&["env", "apply", "-f", &spec, "--wait", "--timeout", "2m"])
        .await;
    first.ok();
    assert!(
        first
            .stdout
            .contains(&format!("environment/{name} created")),
        "{}",
        first.stdout
    );
    assert!(
        first.stderr.contains(&format!("{name} is Ready")),
        "{}",
        first.stderr
    );
    let before = machine
        .run(&["env", "get", &name, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(before["status"]["phase"], "Ready");

    let second = machine.run(&["env", "apply", "-f", &spec]).await;
    second.ok();
    assert!(
        second
            .stdout
            .contains(&format!("environment/{name} unchanged")),
        "{}",
        second.stdout
    );
    let after = machine
        .run(&["env", "get", &name, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(
        after["generation"], before["generation"],
        "nothing was written"
    );
    assert_eq!(
        after["resourceVersion"], before["resourceVersion"],
        "nothing was written"
    );

    // A change in the file is applied, and only it.
    let changed = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("made by the CLI test", "changed by the CLI test");
    let spec = machine.write("env.yaml", &changed);
    let third = machine
        .run(&["env", "apply", "-f", &spec, "-o", "json"])
        .await;
    assert_eq!(
        third.ok().json()["spec"]["description"],
        "changed by the CLI test"
    );

    // The table lists it for people.
    let list = machine.run(&["env", "list"]).await;
    let row = list
        .ok()
        .stdout
        .lines()
        .find(|l| l.starts_with(&name))
        .map(str::to_owned);
    let row = row.unwrap_or_else(|| panic!("{name} in\n{}", list.stdout));
    assert!(row.contains("Ready") && row.contains("owner"), "{row}");
    assert!(list.stdout.starts_with("NAME"), "{}", list.stdout);

    // Merged into a kubeconfig that already has a context of its own,
    // which stays, and which kubectl then uses.
    let kubeconfig = machine.write(
        "kubeconfig",
        "apiVersion: v1\nkind: Config\nclusters:\n- name: elsewhere\n  cluster:\n    server: https://elsewhere.example:6443\nusers:\n- name: me\n  user:\n    token: mine\ncontexts:\n- name: elsewhere\n  context:\n    cluster: elsewhere\n    user: me\ncurrent-context: elsewhere\n",
    );
    let merged = machine
        .run(&[
            "env",
            "kubeconfig",
            &name,
            "--merge",
            "--kubeconfig",
            &kubeconfig,
        ])
        .await;
    merged.ok();
    let backup = std::fs::read_to_string(format!("{kubeconfig}.berth-backup")).unwrap();
    assert!(backup.contains("elsewhere.example"), "the old file is kept");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let parsed: Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        parsed["current-context"], "elsewhere",
        "the current context stays"
    );
    let context = parsed["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .find(|c| c != "elsewhere")
        .expect("a new context");
    assert!(merged.stdout.contains(&context), "{}", merged.stdout);
    let deployments = Command::new(kubectl())
        .args([
            "--kubeconfig",
            &kubeconfig,
            "--context",
            &context,
            "get",
            "deployments",
            "-o",
            "name",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        deployments.status.success(),
        "kubectl with the merged context: {}",
        String::from_utf8_lossy(&deployments.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&deployments.stdout).trim(),
        "deployment.apps/web"
    );
    let can_i = Command::new(kubectl())
        .args([
            "--kubeconfig",
            &kubeconfig,
            "--context",
            &context,
            "auth",
            "can-i",
            "create",
            "deployments",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&can_i.stdout).trim(), "yes");

    let events = machine.run(&["env", "events", &name, "-o", "json"]).await;
    assert!(events.ok().json()["items"].is_array());

    // Delete, waiting until it is gone; then it is not found (exit 3).
    let deleted = machine
        .run(&["env", "delete", &name, "--wait", "--timeout", "2m"])
        .await;
    deleted.ok();
    assert!(
        deleted
            .stdout
            .contains(&format!("environment/{name} deleting")),
        "{}",
        deleted.stdout
    );
    let gone = machine.run(&["env", "get", &name]).await;
    gone.expect(3);
    assert!(gone.stderr.starts_with("error: "), "{}", gone.stderr);

    // Logout revokes the token: it no longer works anywhere.
    let token = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("token = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    machine.run(&["logout"]).await.ok();
    let response = app.get(&token, "/api/v1/me").await;
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    machine.run(&["whoami"]).await.expect(1);
}

// Through the pod logs endpoint (`GET .../pods/{pod}/logs`) to the local
// cluster's kubelets, which serve container logs.
#[tokio::test]
async fn logs_of_an_apps_pod_tail_and_follow() {
    let app = spawn_app_with_controller().await;
    let machine = Machine::new();
    let id = suffix();
    let email = format!("logs-{id}@example.com");
    register(&app, &email).await;
    machine.login(&app, &email, PASSWORD, &[]).await.ok();
    let name = format!("logs-{id}");
    let spec = machine.write(
        "env.yaml",
        &format!(
            "name: {name}\ntemplate: small\napps:\n- name: web\n  image: nginx:1.27\n  replicas: 1\n  port: 8080\n  resources: {{cpu: 100m, memory: 64Mi}}\n"
        ),
    );
    machine
        .run(&["env", "apply", "-f", &spec, "--wait", "--timeout", "2m"])
        .await
        .ok();
    let pod = eventually_running_pod(&machine, &name).await;

    let logs = machine
        .run(&["env", "logs", &name, &pod, "--tail", "5"])
        .await;
    let lines = logs.ok().stdout.lines().count();
    assert!((1..=5).contains(&lines), "{}", logs.stdout);
    assert!(logs.stdout.contains(&pod), "{}", logs.stdout);
    // Without a pod name: the environment's only pod.
    let single = machine.run(&["env", "logs", &name, "--tail", "1"]).await;
    assert_eq!(single.ok().stdout.lines().count(), 1, "{}", single.stdout);
    // Following streams new lines as they come.
    let mut follow = machine.command(&["env", "logs", &name, &pod, "--tail", "0", "-f"]);
    let mut child = follow.stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a new line within 10 s")
        .unwrap()
        .expect("a line");
    assert!(line.contains(&pod), "{line}");
    child.kill().await.unwrap();
    // A pod that is not there is not found.
    machine
        .run(&["env", "logs", &name, "no-such-pod"])
        .await
        .expect(3);
    machine.run(&["env", "delete", &name]).await.ok();
}

/// The name of the environment's pod once it runs.
async fn eventually_running_pod(machine: &Machine, name: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let workloads = machine
            .run(&["env", "workloads", name, "-o", "json"])
            .await
            .ok()
            .json();
        if let Some(pod) = workloads["pods"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["phase"] == "Running")
        {
            return pod["name"].as_str().unwrap().to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no running pod: {workloads}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_bad_spec_prints_each_field_error_and_exits_1() {
    let app = spawn_app_on_cluster().await;
    let machine = Machine::new();
    let email = format!("bad-{}@example.com", suffix());
    register(&app, &email).await;
    machine.login(&app, &email, PASSWORD, &[]).await.ok();

    let bad = machine.write(
        "bad.yaml",
        "name: Not_A_Name\nquota:\n  cpu: lots\n  memory: 4Gi\n",
    );
    for command in ["create", "apply", "preview"] {
        let run = machine.run(&["env", command, "-f", &bad]).await;
        run.expect(1);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        // The server's message, then a line per field.
        assert!(
            run.stderr.contains("\n  name: "),
            "{command}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("\n  quota.cpu: "),
            "{command}: {}",
            run.stderr
        );
    }
    // Not YAML at all, or no file: said, exit 1, nothing sent.
    let junk = machine.write("junk.yaml", "name: [unclosed\n");
    let run = machine.run(&["env", "apply", "-f", &junk]).await;
    run.expect(1);
    assert!(run.stderr.contains("junk.yaml"), "{}", run.stderr);
    machine
        .run(&["env", "apply", "-f", "/no/such/file.yaml"])
        .await
        .expect(1);
    let nameless = machine.write("nameless.yaml", "template: small\n");
    let run = machine.run(&["env", "apply", "-f", &nameless]).await;
    run.expect(1);
    assert!(run.stderr.contains("name: is required"), "{}", run.stderr);
}

#[tokio::test]
async fn an_approval_gated_apply_exits_4_until_an_admin_approves() {
    let app = spawn_app_with_controller().await;
    let machine = Machine::new();
    let id = suffix();
    let email = format!("gated-{id}@example.com");
    register(&app, &email).await;
    machine
        .login(&app, &email, PASSWORD, &["--name", "member"])
        .await
        .ok();
    machine
        .login(&app, ADMIN_EMAIL, ADMIN_PASSWORD, &["--name", "admin"])
        .await
        .ok();
    // The last login is current; switch back to the member.
    machine.run(&["context", "use", "member"]).await.ok();
    let admin = ["--context", "admin"];

    let policy = machine
        .run(&[
            "admin",
            "policy",
            "set",
            "--approval",
            "always",
            "-o",
            "json",
            admin[0],
            admin[1],
        ])
        .await;
    assert_eq!(policy.ok().json()["approval"], "always");
    // Members get "not found" from admin commands, as from the API.
    machine.run(&["admin", "users"]).await.expect(3);

    let name = format!("gated-{id}");
    let spec = machine.write("env.yaml", &format!("name: {name}\ntemplate: small\n"));
    let run = machine.run(&["env", "apply", "-f", &spec]).await;
    run.expect(4);
    assert!(run.stderr.contains("pending approval"), "{}", run.stderr);
    // Applying again files nothing more: the same request still waits.
    machine.run(&["env", "apply", "-f", &spec]).await.expect(4);
    let mine = machine
        .run(&["env", "requests", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "{mine}");

    let waiting = machine
        .run(&["admin", "requests", "-o", "json", admin[0], admin[1]])
        .await
        .ok()
        .json();
    let request = waiting["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["environment"] == name.as_str())
        .unwrap_or_else(|| panic!("the request in {waiting}"));
    let request_id = request["id"].as_str().unwrap();
    let table = machine
        .run(&["admin", "requests", admin[0], admin[1]])
        .await;
    assert!(table.ok().stdout.contains(&name), "{}", table.stdout);
    machine
        .run(&["admin", "approve", request_id, admin[0], admin[1]])
        .await
        .ok();

    // Approved: created; the same file is now a no-op that waits for Ready.
    let run = machine
        .run(&["env", "apply", "-f", &spec, "--wait", "--timeout", "2m"])
        .await;
    run.ok();
    assert!(run.stdout.contains("unchanged"), "{}", run.stdout);

    // A change of bounds waits too, applied once or twice; the requester
    // reads the admin's reason for rejecting it.
    let longer = machine.write(
        "env.yaml",
        &format!("name: {name}\ntemplate: small\nttl: 48h\n"),
    );
    for _ in 1..=2 {
        let run = machine.run(&["env", "apply", "-f", &longer]).await;
        run.expect(4);
        assert!(run.stderr.contains("pending approval"), "{}", run.stderr);
    }
    let waiting = machine
        .run(&["admin", "requests", "-o", "json", admin[0], admin[1]])
        .await
        .ok()
        .json();
    let update = waiting["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["environment"] == name.as_str() && r["kind"] == "update")
        .unwrap_or_else(|| panic!("the change's request in {waiting}"));
    machine
        .run(&[
            "admin",
            "reject",
            update["id"].as_str().unwrap(),
            "--reason",
            "72h is plenty",
            admin[0],
            admin[1],
        ])
        .await
        .ok();
    let mine = machine.run(&["env", "requests"]).await;
    assert!(
        mine.ok().stdout.contains("rejected: 72h is plenty"),
        "{}",
        mine.stdout
    );
    let audit = machine
        .run(&[
            "admin",
            "audit",
            "--environment",
            &name,
            "-o",
            "json",
            admin[0],
            admin[1],
        ])
        .await
        .ok()
        .json();
    assert!(!audit["items"].as_array().unwrap().is_empty(), "{audit}");
    machine.run(&["env", "delete", &name]).await.ok();
}

#[tokio::test]
async fn edit_members_renew_and_scripts_output() {
    let app = spawn_app_with_controller().await;
    let machine = Machine::new();
    let id = suffix();
    let email = format!("edit-{id}@example.com");
    let friend = format!("friend-{id}@example.com");
    register(&app, &email).await;
    register(&app, &friend).await;
    machine.login(&app, &email, PASSWORD, &[]).await.ok();
    let name = format!("edit-{id}");
    let spec = machine.write(
        "env.json",
        &json!({"name": name, "template": "small", "ttl": "8h"}).to_string(),
    );
    let created = machine
        .run(&["env", "create", "-f", &spec, "-o", "yaml"])
        .await;
    let created: Value = serde_yaml::from_str(&created.ok().stdout).unwrap();
    assert_eq!(created["name"], name.as_str());

    // $EDITOR changes the spec; saving sends only that change.
    let editor = machine.write(
        "editor.sh",
        "#!/bin/sh\nprintf 'description: set in the editor\\n' >> \"$1\"\n",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let edited = machine
        .run_with(
            &["env", "edit", &name, "-o", "json"],
            "",
            &[("EDITOR", editor.as_str())],
        )
        .await;
    assert_eq!(
        edited.ok().json()["spec"]["description"],
        "set in the editor"
    );
    let unchanged = machine
        .run_with(&["env", "edit", &name], "", &[("EDITOR", "true")])
        .await;
    assert!(
        unchanged.ok().stdout.contains("no changes"),
        "{}",
        unchanged.stdout
    );

    // Members.
    machine
        .run(&["env", "members", "set", &name, &friend, "--role", "viewer"])
        .await
        .ok();
    let members = machine
        .run(&["env", "members", "list", &name, "-o", "json"])
        .await
        .ok()
        .json();
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == friend.as_str() && m["role"] == "viewer"),
        "{members}"
    );
    machine
        .run(&["env", "members", "remove", &name, &friend])
        .await
        .ok();
    let members = machine.run(&["env", "members", "list", &name]).await;
    assert!(!members.ok().stdout.contains(&friend), "{}", members.stdout);

    // Renew restarts the TTL's clock.
    let renewed = machine
        .run(&["env", "renew", &name, "-o", "json"])
        .await
        .ok()
        .json();
    assert!(renewed["status"]["expiresAt"].is_string(), "{renewed}");

    // Watch prints the environment as it changes (here: as it is), one JSON line each.
    let mut watch = machine.command(&["env", "watch", &name, "-o", "json"]);
    let mut child = watch.stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("a line within 30 s")
        .unwrap()
        .expect("a line");
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["object"]["name"], name.as_str(), "{event}");
    child.kill().await.unwrap();

    // Preview prints the objects as YAML and the plain-language summary.
    let preview = machine.run(&["env", "preview", "-f", &spec]).await;
    assert!(
        preview.ok().stdout.contains("kind: ResourceQuota"),
        "{}",
        preview.stdout
    );
    assert!(preview.stdout.contains("# Summary"), "{}", preview.stdout);

    machine.run(&["env", "delete", &name]).await.ok();
}

#[tokio::test]
async fn wrong_urls_usage_and_completions_are_said_plainly() {
    let machine = Machine::new();
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = machine
        .run_with(
            &[
                "login",
                &url,
                "--email",
                "a@example.com",
                "--password-stdin",
            ],
            "x\n",
            &[],
        )
        .await;
    run.expect(1);
    assert!(
        run.stderr
            .contains(&format!("cannot reach the Berth server at {url}")),
        "{}",
        run.stderr
    );

    // Something that is not Berth answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
            let body = "<html>not here</html>";
            let _ = socket
                .write_all(
                    format!("HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
                        .as_bytes(),
                )
                .await;
        }
    });
    let run = machine
        .run_with(&["login", &other, "--token", "berth_pat_nope"], "", &[])
        .await;
    run.expect(1);
    assert!(
        run.stderr.contains("not an answer of Berth's API"),
        "{}",
        run.stderr
    );
    machine
        .run(&["login", "ftp://example.com", "--token", "x"])
        .await
        .expect(2);

    // Not logged in; usage errors; completions.
    let run = machine.run(&["env", "list"]).await;
    run.expect(1);
    assert!(run.stderr.contains("berth login"), "{}", run.stderr);
    machine.run(&["env", "frobnicate"]).await.expect(2);
    machine.run(&["env", "apply"]).await.expect(2);
    for shell in ["bash", "zsh", "fish"] {
        let run = machine.run(&["completion", shell]).await;
        assert!(run.ok().stdout.contains("berth"), "{shell}");
        assert!(
            run.stdout.contains("kubeconfig"),
            "{shell}: subcommands are completed"
        );
    }
}

#[tokio::test]
async fn ci_jobs_use_a_token_from_the_environment_without_logging_in() {
    let app = spawn_app().await;
    let machine = Machine::new();
    let email = format!("ci-{}@example.com", suffix());
    let token = app.member_token(&email).await;
    let env = [
        ("BERTH_SERVER", app.base.as_str()),
        ("BERTH_TOKEN", token.as_str()),
    ];
    let me = machine.run_with(&["whoami", "-o", "json"], "", &env).await;
    assert_eq!(me.ok().json()["email"], email.as_str());
    assert!(!machine.config().exists(), "nothing was written");
    // A token given to login is checked, then kept.
    let run = machine
        .run_with(
            &["login", &app.base, "--token", "-", "--name", "ci"],
            &format!("{token}\n"),
            &[],
        )
        .await;
    run.ok();
    let me = machine.run(&["whoami", "--context", "ci"]).await;
    assert!(me.ok().stdout.contains(&email), "{}", me.stdout);
    // A context's token never goes to another server.
    let elsewhere = machine
        .run_with(
            &["whoami"],
            "",
            &[("BERTH_SERVER", "https://elsewhere.example")],
        )
        .await;
    elsewhere.expect(2);
    assert!(
        elsewhere.stderr.contains("set BERTH_TOKEN too"),
        "{}",
        elsewhere.stderr
    );
    let bad = machine
        .run_with(
            &["whoami"],
            "",
            &[
                ("BERTH_SERVER", app.base.as_str()),
                ("BERTH_TOKEN", "berth_pat_wrong"),
            ],
        )
        .await;
    bad.expect(1);
    assert!(bad.stderr.contains("berth login"), "{}", bad.stderr);
    // Nor does an environment's token go to the context's server.
    let stray = machine
        .run_with(
            &["whoami"],
            "",
            &[("BERTH_TOKEN", "berth_pat_for_elsewhere")],
        )
        .await;
    stray.expect(2);
    // Logging out of a context whose token was given keeps that token (the
    // CLI did not make it) and says so.
    let out = machine.run(&["logout", "--context", "ci"]).await;
    assert!(out.ok().stdout.contains("left as it is"), "{}", out.stdout);
    assert_eq!(
        app.get(&token, "/api/v1/me").await.status(),
        reqwest::StatusCode::OK
    );
    // Logging in again to a context revokes the token it held before.
    let stored = || -> String {
        let text = std::fs::read_to_string(machine.config()).unwrap();
        let config: toml::Value = toml::from_str(&text).unwrap();
        config["contexts"][0]["token"].as_str().unwrap().to_owned()
    };
    machine
        .login(&app, &email, PASSWORD, &["--name", "again"])
        .await
        .ok();
    let first = stored();
    machine
        .login(&app, &email, PASSWORD, &["--name", "again"])
        .await
        .ok();
    assert_ne!(stored(), first);
    assert_eq!(
        app.get(&first, "/api/v1/me").await.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "the replaced token still works"
    );
    assert!(
        stray.stderr.contains("without BERTH_SERVER"),
        "{}",
        stray.stderr
    );
    // A pasted token's line break is no part of it.
    let pasted = format!("{token}\n");
    let me = machine
        .run_with(
            &["whoami", "-o", "json"],
            "",
            &[
                ("BERTH_SERVER", app.base.as_str()),
                ("BERTH_TOKEN", pasted.as_str()),
            ],
        )
        .await;
    assert_eq!(me.ok().json()["email"], email.as_str());
}

/// The pipeline of the README's GitLab CI example.
fn readme_pipeline() -> Value {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("stop_review:"))
        .expect("the GitLab CI example in the README");
    serde_yaml::from_str(block).expect("the example is YAML")
}

/// Runs `job`'s script of the README's pipeline as GitLab would (each line
/// in one shell that stops at the first failure), with `variables`; the job
/// must succeed.
async fn run_job(pipeline: &Value, job: &str, dir: &Path, variables: &[(String, String)]) {
    let script: Vec<&str> = pipeline[job]["script"]
        .as_array()
        .unwrap_or_else(|| panic!("{job} has a script"))
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    let berth_dir = Path::new(BERTH).parent().unwrap();
    let kubectl_dir = kubectl().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:{}",
        berth_dir.display(),
        kubectl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &script.join("\n")])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .envs(variables.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "job {job}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn the_readme_gitlab_ci_example_makes_and_removes_a_review_environment() {
    let pipeline = readme_pipeline();
    let app = spawn_app_with_controller().await;
    let machine = Machine::new();
    let token = app
        .member_token(&format!("gitlab-{}@example.com", suffix()))
        .await;
    // What GitLab sets for a merge request pipeline; the project id makes
    // the name unique on the shared cluster.
    let project = (uuid::Uuid::new_v4().as_u128() % 1_000_000_000).to_string();
    let ci = [
        ("CI_PROJECT_ID", project.as_str()),
        ("CI_MERGE_REQUEST_IID", "7"),
        ("CI_PIPELINE_SOURCE", "merge_request_event"),
    ];
    let expand = |value: &str| {
        ci.iter().fold(value.to_owned(), |v, (name, value)| {
            v.replace(&format!("${{{name}}}"), value)
        })
    };
    let mut variables: Vec<(String, String)> = pipeline["variables"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), expand(v.as_str().unwrap())))
        .collect();
    variables.retain(|(k, _)| k != "BERTH_SERVER");
    variables.extend([
        ("BERTH_SERVER".to_owned(), app.base.clone()),
        ("BERTH_TOKEN".to_owned(), token.clone()),
    ]);
    variables.extend(ci.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let name = format!("mr-{project}-7");
    assert!(
        variables.contains(&("REVIEW_ENV".to_owned(), name.clone())),
        "{variables:?}"
    );

    // The merge request's manifests.
    let k8s = machine.home.join("k8s");
    std::fs::create_dir_all(&k8s).unwrap();
    std::fs::write(
        k8s.join("config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: review\ndata:\n  merge-request: \"7\"\n",
    )
    .unwrap();

    // Two pipelines of the merge request: created, then the same again.
    for _ in 1..=2 {
        run_job(&pipeline, "review", &machine.home, &variables).await;
    }
    let env = app
        .get_json(&token, &format!("/api/v1/environments/{name}"))
        .await;
    assert_eq!(env["status"]["phase"], "Ready");
    assert_eq!(env["spec"]["description"], "Review of merge request !7");
    let cluster = berth_testkit::cluster().await.unwrap();
    let configs: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(cluster.client(), &name);
    assert!(
        configs.get_opt("review").await.unwrap().is_some(),
        "kubectl applied the manifests"
    );

    // The merge request closes: the stop job deletes it, and may run again.
    for _ in 1..=2 {
        run_job(&pipeline, "stop_review", &machine.home, &variables).await;
    }
    let gone = app
        .get(&token, &format!("/api/v1/environments/{name}"))
        .await;
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
}
