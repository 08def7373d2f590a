//! The MariaDB server `tests/run.sh` starts, seen from a test: where it is,
//! a throwaway database per test (dropped when the guard goes, even on a
//! failed assertion), and scripts loaded with the `mariadb` client, which
//! understands DELIMITER blocks and dump comments.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use barge::endpoint::{DbEndpoint, Endpoint};

/// The variable holding the working password for barge connections in
/// these tests: the target role's, so that a test may set the source
/// role's variable to a wrong password without racing the others.
pub const PASSWORD_VAR: &str = "BARGE_TARGET_PASSWORD";

#[derive(Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

/// The server from `BARGE_TEST_MYSQL_URL`; fails the test when it is unset.
pub fn server() -> Server {
    let raw = std::env::var("BARGE_TEST_MYSQL_URL").unwrap_or_else(|_| {
        panic!(
            "BARGE_TEST_MYSQL_URL is not set, so there is no MariaDB to test against: \
             run these tests with `bash tests/run.sh` (it starts the servers), or start them with \
             `bash tests/services.sh start DIR` and `source DIR/env`"
        )
    });
    let url = url::Url::parse(&raw).unwrap_or_else(|e| panic!("BARGE_TEST_MYSQL_URL is not a URL: {e}"));
    let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    let s = Server {
        host: url.host_str().unwrap_or("127.0.0.1").to_string(),
        port: url.port().unwrap_or(3306),
        user: decode(url.username()),
        password: decode(url.password().unwrap_or("")),
    };
    std::env::set_var(PASSWORD_VAR, &s.password);
    s
}

impl Server {
    /// A barge URL for `db`, without the password (barge refuses those);
    /// `query` is appended as is (e.g. `ssl-mode=DISABLED`).
    pub fn url(&self, db: &str, query: &str) -> String {
        let q = if query.is_empty() { String::new() } else { format!("?{query}") };
        format!("mysql://{}@{}:{}/{db}{q}", self.user, self.host, self.port)
    }

    pub fn endpoint(&self, db: &str, query: &str) -> DbEndpoint {
        match Endpoint::parse(&self.url(db, query)).expect("test URL parses") {
            Endpoint::Mysql(e) => e,
            other => panic!("not a MySQL endpoint: {other}"),
        }
    }

    /// The `mariadb` client for this server; the password goes through the
    /// environment, never argv.
    pub fn client(&self, db: Option<&str>) -> Command {
        let mut c = Command::new("mariadb");
        c.args(["--no-defaults", "--batch", "-h", &self.host, "-P", &self.port.to_string(), "-u", &self.user]);
        if let Some(db) = db {
            c.arg(format!("--database={db}"));
        }
        c.env("MYSQL_PWD", &self.password);
        c
    }

    /// Runs a script through the client; panics with its output on failure.
    pub fn run_script(&self, db: Option<&str>, script: &str) {
        let mut child = self
            .client(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run the `mariadb` client (installed with the server by tests/services.sh): {e}"));
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "mariadb client failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new, empty database named after `tag`, dropped with the guard.
    pub fn fresh_database(&self, tag: &str) -> TestDb {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("barge_t_{tag}_{}", &id[..10]);
        self.run_script(None, &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;"));
        TestDb { server: self.clone(), name }
    }
}

pub struct TestDb {
    pub server: Server,
    pub name: String,
}

impl TestDb {
    pub fn endpoint(&self, query: &str) -> DbEndpoint {
        self.server.endpoint(&self.name, query)
    }

    pub fn load(&self, script: &str) {
        self.server.run_script(Some(&self.name), script);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = self
            .server
            .client(None)
            .args(["-e", &format!("DROP DATABASE IF EXISTS `{}`", self.name)])
            .output();
    }
}

/// A mysqldump of one database, made loadable into another: the
/// `CREATE DATABASE` and `USE` lines naming the dumped one are dropped.
pub fn retarget_dump(dump: &str) -> String {
    dump.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("CREATE DATABASE ") || (t.starts_with("USE `") && t.trim_end().ends_with("`;")))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A private MariaDB with TLS (certificates made here with `openssl`, for
/// the name `db.example` only), on 127.0.0.1, for the opt-in TLS test.
/// The server and its files go when the guard does.
pub struct TlsServer {
    pub server: Server,
    pub ca_file: std::path::PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    pub fn start() -> TlsServer {
        let dir = tempfile::Builder::new().prefix("barge-tls-my").tempdir().unwrap();
        let d = dir.path();
        let sh = |args: &[&str]| {
            let out = Command::new(args[0]).args(&args[1..]).current_dir(d).output().unwrap_or_else(|e| panic!("{}: {e}", args[0]));
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:db.example\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n").unwrap();
        sh(&["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=barge test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        sh(&["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=db.example"]);
        sh(&["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"]);
        let data = d.join("data");
        let sock = d.join("s.sock");
        sh(&["mariadb-install-db", "--no-defaults", "--user=root", &format!("--datadir={}", data.display()), "--skip-test-db",
            "--auth-root-authentication-method=socket", "--skip-name-resolve"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(d.join("mariadbd.log")).unwrap();
        let child = Command::new("/usr/sbin/mariadbd")
            .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1", "--skip-name-resolve", "--skip-log-bin"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", sock.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--ssl-ca={}", d.join("ca.pem").display()))
            .arg(format!("--ssl-cert={}", d.join("server.pem").display()))
            .arg(format!("--ssl-key={}", d.join("server.key").display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mariadbd");
        let password = "tls-test-pw".to_string();
        let mut me = TlsServer {
            server: Server { host: "127.0.0.1".into(), port, user: "barge".into(), password: password.clone() },
            ca_file: d.join("ca.pem"),
            child,
            _dir: dir,
        };
        let root = || {
            let mut c = Command::new("mariadb");
            c.args(["--no-defaults", "-u", "root", "-S"]).arg(&sock);
            c
        };
        for i in 0.. {
            if root().args(["-e", "SELECT 1"]).output().is_ok_and(|o| o.status.success()) {
                break;
            }
            if i > 300 || me.child.try_wait().unwrap().is_some() {
                panic!("the TLS MariaDB did not start: {}", std::fs::read_to_string(me._dir.path().join("mariadbd.log")).unwrap_or_default());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = root()
            .args(["-e", &format!("DELETE FROM mysql.global_priv WHERE User=''; CREATE USER 'barge'@'127.0.0.1' IDENTIFIED BY '{password}'; GRANT ALL ON *.* TO 'barge'@'127.0.0.1'; FLUSH PRIVILEGES; CREATE DATABASE tls_db;")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        me
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
