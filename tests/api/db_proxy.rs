//! A loopback TCP proxy in front of PostgreSQL that a test can take down and bring back
//! (docs/reliability.md §6): `down` refuses new connections and drops open ones.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct DbProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl DbProxy {
    pub async fn start(upstream: SocketAddr) -> DbProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let proxy = DbProxy {
            addr,
            upstream,
            tasks: Arc::default(),
            acceptor: Mutex::new(None),
        };
        proxy.accept_on(listener);
        proxy
    }

    /// A proxy in front of the database server of `database_url`, and the same URL pointed
    /// through it.
    pub async fn in_front_of(database_url: &str) -> (DbProxy, url::Url) {
        let mut url = url::Url::parse(database_url).expect("a database URL");
        let host = url.host_str().expect("a host").to_owned();
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host((host.as_str(), url.port().unwrap_or(5432)))
                .await
                .expect("the database host resolves")
                .collect();
        // `localhost` may resolve to ::1 first; PostgreSQL often listens on 127.0.0.1 only.
        let upstream = *addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .expect("an address");
        let proxy = DbProxy::start(upstream).await;
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(proxy.addr.port())).expect("port");
        (proxy, url)
    }

    fn accept_on(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let upstream = self.upstream;
        let handle = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().expect("lock").push(task);
            }
        });
        *self.acceptor.lock().expect("lock") = Some(handle);
    }

    /// Refuse new connections and cut the open ones.
    pub fn down(&self) {
        if let Some(a) = self.acceptor.lock().expect("lock").take() {
            a.abort();
        }
        for t in self.tasks.lock().expect("lock").drain(..) {
            t.abort();
        }
    }

    /// Listen again on the same port.
    pub async fn up(&self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind proxy");
        self.accept_on(listener);
    }
}
