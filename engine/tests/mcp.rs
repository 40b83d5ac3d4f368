//! MCP servers against the real `@modelcontextprotocol/server-everything` (from npm, over
//! stdio and Streamable HTTP) and a shell stand-in: approval before anything runs, tools
//! listed and pinned, a changed list flagged, owners only.

use std::path::PathBuf;
use std::time::Duration;

use engine::Engine;
use engine::infra::store::Backend;
use engine::mcp::McpError;
use engine::testing::{each_backend, two_users};
use model::mcp::{McpForm, Status};

/// The npm package the test script installs with the end-to-end suite.
fn everything() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../end2end/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(p.exists(), "{} is missing: run `npm ci` in end2end/ (scripts/test.sh does)", p.display());
    p.canonicalize().expect("path").display().to_string()
}

fn stdio(name: &str, command: &str, args: &[&str], env: &str) -> model::mcp::McpDraft {
    McpForm {
        name: name.into(),
        transport: "stdio".into(),
        command: command.into(),
        args: args.join("\n"),
        env: env.into(),
        ..Default::default()
    }
    .parse()
    .expect("draft")
}

async fn sqlite() -> Engine {
    engine::testing::engine(Backend::Sqlite).await
}

#[tokio::test]
async fn an_unapproved_stdio_server_is_never_spawned() {
    let e = sqlite().await;
    let t = two_users(&e).await;
    let marker = engine::testing::temp_dir("mcp-marker").join("ran");
    let script = format!("touch {}", marker.display());
    let s = e.create_mcp(&t.admin.user, stdio("Shell", "/bin/sh", &["-c", &script], "")).await.expect("create");
    assert!(!s.approved);
    assert!(matches!(e.connect_mcp(&t.admin.user, &s.id).await, Err(McpError::NotApproved)));
    // Approving anything but the exact line shown approves nothing.
    assert!(matches!(e.approve_mcp(&t.admin.user, &s.id, "/bin/sh -c true").await, Err(McpError::NotApproved)));
    assert!(matches!(e.connect_mcp(&t.admin.user, &s.id).await, Err(McpError::NotApproved)));
    assert!(!marker.exists(), "the command ran without approval");

    let s = e.approve_mcp(&t.admin.user, &s.id, &s.command_line).await.expect("approve");
    assert!(s.approved);
    let s = e.connect_mcp(&t.admin.user, &s.id).await.expect("connect runs");
    assert!(marker.exists(), "the approved command ran");
    assert_eq!(s.status, Status::Failed, "a shell is not an MCP server");
    assert!(!s.last_error.is_empty());

    // Editing the command line withdraws the approval.
    let s = e.update_mcp(&t.admin.user, &s.id, stdio("Shell", "/bin/sh", &["-c", "true"], "")).await.expect("edit");
    assert!(!s.approved);
}

#[tokio::test]
async fn a_stdio_server_lives_outside_the_data_dir_in_an_owner_only_home() {
    use std::os::unix::fs::PermissionsExt;
    let e = sqlite().await;
    let t = two_users(&e).await;
    let out = engine::testing::temp_dir("mcp-where").join("where");
    let script = format!("printf '%s\\n%s\\n' \"$HOME\" \"$(pwd -P)\" > {}", out.display());
    let s = e.create_mcp(&t.admin.user, stdio("Where", "/bin/sh", &["-c", &script], "")).await.expect("create");
    let s = e.approve_mcp(&t.admin.user, &s.id, &s.command_line).await.expect("approve");
    e.connect_mcp(&t.admin.user, &s.id).await.expect("connect runs");
    let text = std::fs::read_to_string(&out).expect("the command ran");
    let lines: Vec<&str> = text.lines().collect();
    let [home, cwd] = lines[..] else { panic!("HOME and cwd expected: {text:?}") };
    let home = PathBuf::from(home).canonicalize().expect("HOME exists");
    let data = e.settings.data_dir.canonicalize().expect("data dir");
    assert_eq!(PathBuf::from(cwd), home, "it runs in its HOME");
    assert!(!home.starts_with(&data), "{} is under the data dir {}", home.display(), data.display());
    assert!(!data.starts_with(&home), "{} holds the data dir", home.display());
    for dir in [&home, home.parent().expect("parent")] {
        let mode = std::fs::metadata(dir).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }
}

#[tokio::test]
async fn server_everything_lists_its_tools_over_stdio_without_our_environment() {
    let e = sqlite().await;
    let t = two_users(&e).await;
    let s = e
        .create_mcp(&t.admin.user, stdio("Everything", "node", &[&everything(), "stdio"], "FOO=bar"))
        .await
        .expect("create");
    assert_eq!(s.env_names, ["FOO"]);
    assert!(s.command_line.starts_with("FOO=<hmac:"), "{}", s.command_line);
    let s = e.approve_mcp(&t.admin.user, &s.id, &s.command_line).await.expect("approve");
    let s = e.connect_mcp(&t.admin.user, &s.id).await.expect("connect");
    assert_eq!(s.status, Status::Connected, "{} / {}", s.last_error, s.stderr_tail);
    let names: Vec<&str> = s.tools.iter().map(|t| t.name.as_str()).collect();
    for want in ["echo", "get-env", "get-sum"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let echo = s.tools.iter().find(|t| t.name == "echo").expect("echo");
    assert!(echo.schema.contains("\"message\""), "{}", echo.schema);
    assert!(s.changed_tools.is_none());

    // The server sees only what it was given, nothing of ours.
    let home = engine::testing::temp_dir("mcp-home");
    let (client, _) = engine::mcp::client::connect_stdio(
        "node",
        &[everything(), "stdio".into()],
        &[("FOO".into(), "bar".into())],
        &home,
        Duration::from_secs(30),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("spawn");
    let out = engine::mcp::client::call_tool(&client, "get-env", serde_json::json!({}), Duration::from_secs(10))
        .await
        .expect("get-env");
    engine::mcp::client::shutdown(client).await;
    let text = out["content"][0]["text"].as_str().unwrap_or_default();
    let env: serde_json::Value = serde_json::from_str(text).expect("env json");
    let keys: Vec<&str> = env.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    assert_eq!(env["FOO"], "bar");
    assert!(keys.iter().all(|k| ["FOO", "PATH", "HOME"].contains(k)), "inherited: {keys:?}");

    // A later different list is flagged and kept aside until approved.
    engine::sqlx::query("UPDATE mcp_servers SET tools = '[]' WHERE id = $1")
        .bind(&s.id)
        .execute(&e.store.pool)
        .await
        .expect("forget");
    let again = e.connect_mcp(&t.admin.user, &s.id).await.expect("reconnect");
    assert!(again.tools.is_empty(), "the pinned list did not change by itself");
    assert_eq!(again.changed_tools.as_ref().map(Vec::len), Some(s.tools.len()));
    let approved = e.approve_mcp_tools(&t.admin.user, &s.id).await.expect("approve tools");
    assert_eq!(approved.tools, s.tools);
    assert!(approved.changed_tools.is_none());
}

#[tokio::test]
async fn server_everything_lists_its_tools_over_streamable_http() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut child = tokio::process::Command::new("node")
        .args([everything().as_str(), "streamableHttp"])
        .env("PORT", port.to_string())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("node");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = sqlite().await;
    let t = two_users(&e).await;
    let form = |url: &str| McpForm {
        name: "HTTP".into(),
        transport: "http".into(),
        url: url.into(),
        headers: "X-Team: blue".into(),
        ..Default::default()
    };
    let url = format!("http://127.0.0.1:{port}/mcp");
    // A member may not point a connection at this machine.
    let err = e.create_mcp(&t.member.user, form(&url).parse().expect("draft")).await.expect_err("private");
    assert!(matches!(err, McpError::Invalid(_)), "{err:?}");
    let s = e.create_mcp(&t.admin.user, form(&url).parse().expect("draft")).await.expect("create");
    assert!(s.approved, "nothing runs here, so nothing to approve");
    assert_eq!(s.header_names, ["X-Team"]);
    let s = e.connect_mcp(&t.admin.user, &s.id).await.expect("connect");
    assert_eq!(s.status, Status::Connected, "{}", s.last_error);
    assert!(s.tools.iter().any(|t| t.name == "echo"));
    let _ = child.kill().await;
}

#[tokio::test]
async fn members_may_not_run_commands_and_nobody_reaches_another_users_server() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let err = e.create_mcp(&t.member.user, stdio("Mine", "/bin/true", &[], "")).await.expect_err("member stdio");
        assert!(matches!(err, McpError::StdioAdminOnly));
        let s =
            e.create_mcp(&t.admin.user, stdio("Ada's", "/bin/true", &[], "SECRET=s3cr3t-value")).await.expect("create");
        let other = &t.member.user;
        let nf = |r: Result<(), McpError>, what: &str| assert!(matches!(r, Err(McpError::NotFound)), "{what}");
        nf(e.get_mcp(other, &s.id).await.map(drop), "get");
        nf(e.update_mcp(other, &s.id, stdio("x", "/bin/sh", &[], "")).await.map(drop), "update");
        nf(e.approve_mcp(other, &s.id, &s.command_line).await.map(drop), "approve");
        nf(e.connect_mcp(other, &s.id).await.map(drop), "connect");
        nf(e.approve_mcp_tools(other, &s.id).await.map(drop), "approve tools");
        nf(e.delete_mcp(other, &s.id).await, "delete");
        assert!(e.list_mcp(other, "", 1).await.expect("list").items.is_empty());
        let after = e.get_mcp(&t.admin.user, &s.id).await.expect("still there");
        assert_eq!((after.name.as_str(), after.approved), ("Ada's", false));
        let stored: String = engine::sqlx::query_scalar("SELECT env_sealed FROM mcp_servers WHERE id = $1")
            .bind(&s.id)
            .fetch_one(&e.store.pool)
            .await
            .expect("row");
        assert!(!stored.contains("s3cr3t"), "env values are sealed at rest");
    })
    .await;
}

#[tokio::test]
async fn any_change_to_the_env_withdraws_the_approval_and_values_show_as_fingerprints() {
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let me = &t.admin.user;
        let marker = engine::testing::temp_dir("mcp-env").join("ran");
        let script = format!("touch {}", marker.display());
        let draft = |env: &str| stdio("Shell", "/bin/sh", &["-c", &script], env);
        let s = e.create_mcp(me, draft("API_KEY=first-secret-value")).await.expect("create");
        // The value shows as a short fingerprint, never itself.
        let (env, _) = s.command_line.split_once(' ').expect("env first");
        let fp = env.strip_prefix("API_KEY=<hmac:").and_then(|r| r.strip_suffix('>')).unwrap_or_default();
        assert!(fp.len() == 8 && fp.bytes().all(|b| b.is_ascii_hexdigit()), "{}", s.command_line);
        assert!(!s.command_line.contains("first-secret-value"));
        let s = e.approve_mcp(me, &s.id, &s.command_line).await.expect("approve");
        assert!(s.approved);

        // Saving what is there keeps the approval: the env box left empty, or the same value.
        let same = e.update_mcp(me, &s.id, draft("")).await.expect("kept env");
        assert_eq!((same.approved, &same.command_line), (true, &s.command_line));
        let same = e.update_mcp(me, &s.id, draft("API_KEY=first-secret-value")).await.expect("same value");
        assert_eq!((same.approved, &same.command_line), (true, &s.command_line));

        // Only the value changes: so does the line, and the approval is gone.
        let changed = e.update_mcp(me, &s.id, draft("API_KEY=second-secret-value")).await.expect("edit");
        assert!(!changed.approved);
        assert_ne!(changed.command_line, s.command_line);
        assert!(matches!(e.connect_mcp(me, &s.id).await, Err(McpError::NotApproved)));
        assert!(!marker.exists(), "a changed env ran without approval");
        // Changing it back does not bring the approval back.
        let back = e.update_mcp(me, &s.id, draft("API_KEY=first-secret-value")).await.expect("back");
        assert_eq!((back.approved, &back.command_line), (false, &s.command_line));
        // The same value on another server gets another fingerprint.
        let other = e.create_mcp(me, stdio("Other", "/bin/sh", &["-c", &script], "API_KEY=first-secret-value")).await;
        assert_ne!(other.expect("other").command_line, s.command_line);
    })
    .await;
}

/// Our own stdio fixture: its tools come from a file the test rewrites.
fn fixture() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end/fixtures/mcp-fixture.mjs");
    p.canonicalize().expect("fixture").display().to_string()
}

fn tool(name: &str, read_only: bool) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "description": format!("The {name} tool."),
        "inputSchema": { "type": "object", "properties": { "a": { "type": "number" } } },
        "annotations": { "readOnlyHint": read_only },
    })
}

#[tokio::test]
async fn the_fixture_tool_list_changing_is_flagged_until_approved() {
    let e = sqlite().await;
    let t = two_users(&e).await;
    let file = engine::testing::temp_dir("mcp-fixture").join("tools.json");
    std::fs::write(&file, serde_json::json!([tool("add", true), tool("write_note", false)]).to_string()).expect("w");
    let me = &t.admin.user;
    let s =
        e.create_mcp(me, stdio("Fixture", "node", &[&fixture(), &file.display().to_string()], "")).await.expect("c");
    let s = e.approve_mcp(me, &s.id, &s.command_line).await.expect("approve");
    let s = e.connect_mcp(me, &s.id).await.expect("connect");
    assert_eq!(s.status, Status::Connected, "{} / {}", s.last_error, s.stderr_tail);
    assert_eq!(
        s.tools.iter().map(|t| (t.name.as_str(), t.read_only)).collect::<Vec<_>>(),
        [("add", true), ("write_note", false)]
    );
    assert!(s.stderr_tail.contains("mcp-fixture: started"), "stderr kept: {:?}", s.stderr_tail);

    // The server now offers a different list: the pinned one stays, the new one is flagged.
    std::fs::write(&file, serde_json::json!([tool("add", true), tool("delete_all", false)]).to_string()).expect("w");
    let again = e.connect_mcp(me, &s.id).await.expect("reconnect");
    assert_eq!(again.tools, s.tools);
    let changed = again.changed_tools.clone().expect("flagged");
    assert_eq!(engine::mcp::tool_changes(&again.tools, &changed), ["+ delete_all", "- write_note"]);
    let approved = e.approve_mcp_tools(me, &s.id).await.expect("approve tools");
    assert_eq!(approved.tools, changed);
    assert!(approved.changed_tools.is_none());
}

#[tokio::test]
async fn attached_servers_bring_their_tools_with_policies_and_travel_by_name() {
    use engine::agents::Attachment;
    use model::agents::ToolPolicy;
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let me = &t.admin.user;
        let provider = model::providers::ProviderForm {
            name: "Team".into(),
            kind: "openai".into(),
            base_url: "https://api.example.com/v1".into(),
            shared: Some("on".into()),
            ..Default::default()
        };
        let provider = e.create_provider(me, provider.parse().expect("p")).await.expect("provider");
        let form = model::agents::AgentForm {
            name: "Helper".into(),
            provider_id: provider.id.clone(),
            model: "m".into(),
            tool_policies: "Fixture/add=deny".into(),
            ..Default::default()
        };
        let agent = e.create_agent(me, form.parse().expect("spec")).await.expect("agent");
        let s = e.create_mcp(me, stdio("Fixture", "node", &[&fixture()], "")).await.expect("mcp");
        let s = e.approve_mcp(me, &s.id, &s.command_line).await.expect("approve");
        let s = e.connect_mcp(me, &s.id).await.expect("connect");
        assert_eq!(s.status, Status::Connected, "{}", s.last_error);

        // Another user can neither attach this server nor touch this agent.
        let other = &t.member.user;
        let err = e.set_agent_attachment(other, &agent.id, Attachment::Mcp, &s.id, true).await.expect_err("other");
        assert!(matches!(err, engine::agents::AgentError::NotFound), "{err:?}");

        let a = e.set_agent_attachment(me, &agent.id, Attachment::Mcp, &s.id, true).await.expect("attach");
        assert_eq!(a.version, 2);
        assert_eq!(a.mcp_names, [(s.id.clone(), "Fixture".to_owned())]);
        let policies: Vec<_> = a.tools.iter().map(|t| (t.key.as_str(), t.policy, t.explicit)).collect();
        assert_eq!(policies, [("Fixture/add", ToolPolicy::Deny, true), ("Fixture/write_note", ToolPolicy::Ask, false)]);
        assert_eq!(e.get_mcp(me, &s.id).await.expect("get").used_by, [(agent.id.clone(), "Helper".to_owned())]);

        // Deleting it is refused while the agent uses it, naming the agent.
        match e.delete_mcp(me, &s.id).await {
            Err(McpError::InUse(names)) => assert_eq!(names, ["Helper"]),
            other => panic!("expected in use, got {other:?}"),
        }

        // Export names it; import into a user with a server of that name attaches theirs.
        let doc = e.export_agent(me, &agent.id).await.expect("export");
        assert_eq!(doc.mcp_servers, ["Fixture"]);
        let json = serde_json::to_string(&doc).expect("json");
        let err = e.import_agent(other, &json).await.expect_err("no such server");
        match err {
            engine::agents::AgentError::Invalid(f) => assert!(f.get("mcp_servers").is_some(), "{f:?}"),
            other => panic!("expected invalid, got {other:?}"),
        }
        let url = "https://mcp.example.com/mcp";
        let form = McpForm { name: "Fixture".into(), transport: "http".into(), url: url.into(), ..Default::default() };
        let theirs = e.create_mcp(other, form.parse().expect("d")).await.expect("theirs");
        let imported = e.import_agent(other, &json).await.expect("import");
        assert_eq!(imported.spec.mcp_servers, [theirs.id]);

        let a = e.set_agent_attachment(me, &agent.id, Attachment::Mcp, &s.id, false).await.expect("detach");
        assert!(a.tools.is_empty() && a.mcp_names.is_empty());
        e.delete_mcp(me, &s.id).await.expect("delete once free");
    })
    .await;
}

#[tokio::test]
async fn a_read_only_mark_allows_nothing_until_an_admin_trusts_the_server() {
    use engine::agents::Attachment;
    use model::agents::ToolPolicy;
    each_backend(|e| async move {
        let t = two_users(&e).await;
        let (admin, member) = (&t.admin.user, &t.member.user);
        let remote = |trust: Option<&str>| {
            McpForm {
                name: "Remote".into(),
                transport: "http".into(),
                url: "https://mcp.example.com/mcp".into(),
                trust_read_only: trust.map(Into::into),
                ..Default::default()
            }
            .parse()
            .expect("draft")
        };

        // A member can neither create nor edit a server into trusting its marks.
        let err = e.create_mcp(member, remote(Some("on"))).await.expect_err("member trusts");
        assert!(matches!(err, McpError::TrustAdminOnly), "{err:?}");
        assert!(e.list_mcp(member, "", 1).await.expect("list").items.is_empty(), "nothing was created");
        let theirs = e.create_mcp(member, remote(None)).await.expect("create");
        let err = e.update_mcp(member, &theirs.id, remote(Some("on"))).await.expect_err("member trusts");
        assert!(matches!(err, McpError::TrustAdminOnly), "{err:?}");
        // A flag left on a member's row (an admin since demoted) counts for nothing.
        engine::sqlx::query("UPDATE mcp_servers SET trust_read_only = 1 WHERE id = $1")
            .bind(&theirs.id)
            .execute(&e.store.pool)
            .await
            .expect("flag");
        assert!(!e.get_mcp(member, &theirs.id).await.expect("get").trust_read_only);

        // The admin's server pins a destructive tool that claims to only read.
        let s = e.create_mcp(admin, remote(None)).await.expect("create");
        assert!(!s.trust_read_only);
        let tools = serde_json::json!([{ "name": "delete_everything", "schema": "{}", "read_only": true }]);
        engine::sqlx::query("UPDATE mcp_servers SET tools = $2 WHERE id = $1")
            .bind(&s.id)
            .bind(tools.to_string())
            .execute(&e.store.pool)
            .await
            .expect("pin");
        let provider = model::providers::ProviderForm {
            name: "Team".into(),
            kind: "openai".into(),
            base_url: "https://api.example.com/v1".into(),
            ..Default::default()
        };
        let provider = e.create_provider(admin, provider.parse().expect("p")).await.expect("provider");
        let form = model::agents::AgentForm {
            name: "Cleaner".into(),
            provider_id: provider.id,
            model: "m".into(),
            ..Default::default()
        };
        let agent = e.create_agent(admin, form.parse().expect("spec")).await.expect("agent");
        let a = e.set_agent_attachment(admin, &agent.id, Attachment::Mcp, &s.id, true).await.expect("attach");
        let policy =
            |a: &model::agents::AgentView| a.tools.iter().map(|t| (t.key.clone(), t.policy)).collect::<Vec<_>>();
        assert_eq!(policy(&a), [("Remote/delete_everything".to_owned(), ToolPolicy::Ask)]);

        // Trusted by the admin, it defaults to allow; an explicit policy still wins.
        let s = e.update_mcp(admin, &s.id, remote(Some("on"))).await.expect("trust");
        assert!(s.trust_read_only);
        let a = e.get_agent(admin, &agent.id).await.expect("agent");
        assert_eq!(policy(&a), [("Remote/delete_everything".to_owned(), ToolPolicy::Allow)]);
        let mut spec = a.spec.clone();
        spec.tool_policies.insert("delete_everything".into(), ToolPolicy::Ask);
        let a = e.update_agent(admin, &agent.id, Some(a.version), spec).await.expect("policy");
        assert_eq!(policy(&a), [("Remote/delete_everything".to_owned(), ToolPolicy::Ask)]);
    })
    .await;
}
