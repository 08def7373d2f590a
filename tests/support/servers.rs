//! Servers a test owns, so it can stop, restart or cut them off without
//! disturbing the shared ones: a PostgreSQL cluster, a MariaDB server, and
//! a TCP proxy that can black-hole a connection (it stops forwarding and
//! answers nothing, as a dropped route or a firewall does).

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A PostgreSQL cluster of its own, so restarting it disturbs no other test.
pub struct PrivatePg {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: String,
}

impl PrivatePg {
    fn as_postgres(&self, program: &str) -> std::process::Command {
        let exe = format!("{}/{program}", self.bin);
        if unsafe { libc::geteuid() } == 0 {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &exe]);
            c
        } else {
            std::process::Command::new(exe)
        }
    }

    pub fn start() -> PrivatePg {
        let bin = std::env::var("BARGE_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let me = PrivatePg { dir, port, bin };
        if unsafe { libc::geteuid() } == 0 {
            std::process::Command::new("chown").args(["-R", "postgres:"]).arg(me.dir.path()).status().unwrap();
        }
        let data = me.dir.path().join("data");
        let ok = me.as_postgres("initdb").arg("-D").arg(&data).args(["-U", "barge", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"]).stdout(Stdio::null()).status().unwrap();
        assert!(ok.success(), "initdb failed");
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nwal_level = logical\nmax_replication_slots = 10\nmax_wal_senders = 10\nfsync = off\n",
            me.port,
            me.dir.path().display()
        );
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap().write_all(conf.as_bytes()).unwrap();
        me.ctl(&["start"]);
        me
    }

    /// `pg_ctl` with fast shutdown (or `-m immediate` in `args`: a crash).
    pub fn ctl(&self, args: &[&str]) {
        let ok = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60"])
            .args(if args.contains(&"-m") { &[][..] } else { &["-m", "fast"][..] })
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl {args:?} failed");
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://barge@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }

    pub fn conninfo(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=barge dbname={db}", self.port)
    }

    pub async fn client(&self, db: &str) -> Option<tokio_postgres::Client> {
        let (client, c) = tokio_postgres::connect(&self.conninfo(db), tokio_postgres::NoTls).await.ok()?;
        tokio::spawn(c);
        Some(client)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self.as_postgres("pg_ctl").arg("-D").arg(self.dir.path().join("data")).args(["-m", "immediate", "-w", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// A MariaDB server of its own (row-based binary log), reachable over TCP
/// as user `barge` without a password.
pub struct PrivateMaria {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateMaria {
    fn mariadbd() -> String {
        ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"].iter().find(|p| std::path::Path::new(p).exists()).unwrap_or(&"mariadbd").to_string()
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("my.sock")
    }

    pub fn start() -> PrivateMaria {
        let dir = tempfile::Builder::new().prefix("bm").tempdir_in("/tmp").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        for d in ["data", "binlog", "tmp"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let ok = std::process::Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db", "--auth-root-authentication-method=socket", "--skip-name-resolve"])
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db");
        assert!(ok.success(), "mariadb-install-db failed");
        let mut me = PrivateMaria { dir, port, child: None };
        me.launch();
        let sql = "DELETE FROM mysql.global_priv WHERE User = ''; CREATE USER 'barge'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'barge'@'127.0.0.1'; FLUSH PRIVILEGES;";
        let ok = std::process::Command::new("mariadb").args(["--no-defaults", "-u", "root", "-S"]).arg(me.socket()).args(["-e", sql]).status().unwrap();
        assert!(ok.success(), "creating the test user failed");
        me
    }

    /// Starts mariadbd and waits until it answers.
    pub fn launch(&mut self) {
        let d = self.dir.path();
        let child = std::process::Command::new(Self::mariadbd())
            .args(["--no-defaults", "--user=root", "--bind-address=127.0.0.1", "--server-id=1", "--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL", "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0"])
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--log-bin={}", d.join("binlog/mysql-bin").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", self.socket().display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("log")).unwrap())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mariadbd did not start: {}", std::fs::read_to_string(d.join("log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A clean shutdown, as an operator's `systemctl stop` does.
    pub fn shutdown(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            c.wait().unwrap();
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://barge@127.0.0.1:{}/{db}?ssl-mode=DISABLED", self.port)
    }

    pub async fn exec(&self, db: &str, sql: &str) {
        use mysql_async::prelude::Queryable;
        let opts = mysql_async::OptsBuilder::default().ip_or_hostname("127.0.0.1").tcp_port(self.port).user(Some("barge")).db_name(if db.is_empty() { None } else { Some(db) });
        let mut c = mysql_async::Conn::new(opts).await.unwrap();
        c.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = c.disconnect().await;
    }
}

impl Drop for PrivateMaria {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP proxy to `127.0.0.1:upstream` that can be told to black-hole:
/// every connection, open or new, then gets no byte through and no reset.
pub struct BlackHole {
    pub port: u16,
    holed: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start(upstream: u16) -> BlackHole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let holed = Arc::new(AtomicBool::new(false));
        let h = holed.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let h = h.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pump(cr, sw, h.clone()), pump(sr, cw, h));
                });
            }
        });
        BlackHole { port, holed, task }
    }

    pub fn hole(&self, on: bool) {
        self.holed.store(on, Ordering::SeqCst);
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies bytes one way; while black-holed it holds what it read (the
/// connection stays open and silent).
async fn pump(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, holed: Arc<AtomicBool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while holed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while holed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
