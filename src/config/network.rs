//! `[network]` and `[ssh]`: the hostname, interfaces (DHCP through busybox udhcpc, or
//! static IPv4), and a dropbear server, checked when the board loads. Each becomes one of
//! kiln's own services (`network`, `ssh`) that board services may be `after`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use super::raw::{RawInterface, RawNetwork, RawSsh};
use super::services::{LOG_FILES, LOG_SIZE, Log, Run, Service};
use super::{Problem, problem};

/// Where the udhcpc event script goes.
pub const UDHCPC_SCRIPT: &str = "/etc/kiln/udhcpc";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub hostname: Option<String>,
    pub interfaces: BTreeMap<String, Interface>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interface {
    Dhcp,
    Static {
        address: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
        dns: Vec<IpAddr>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssh {
    pub port: u16,
    /// The board's own host keys; empty: generated at first boot (`dropbear -R`).
    pub host_keys: Vec<PathBuf>,
}

fn check_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub fn network(raw: RawNetwork) -> Result<Network, Problem> {
    if let Some(name) = &raw.hostname {
        if !check_hostname(name) {
            return Err(problem(
                "[network] hostname",
                format!(
                    "{name:?}: letters, digits and '-' in dot-separated labels, at most 64 bytes"
                ),
            ));
        }
    }
    let mut interfaces = BTreeMap::new();
    for (name, interface) in raw.interfaces.unwrap_or_default() {
        let key = format!("[network] interfaces.{name}");
        // IFNAMSIZ is 16 with the NUL.
        if !super::portable_name(&name, 15, '-') || name == "." || name == ".." {
            return Err(problem(
                &key,
                format!(
                    "{name:?} is not an interface name (1 to 15 letters, digits, '.', '_', '-')"
                ),
            ));
        }
        let interface = match interface {
            RawInterface::Method(method) if method == "dhcp" => Interface::Dhcp,
            RawInterface::Method(other) => {
                return Err(problem(
                    &key,
                    format!(
                        "{other:?}: give \"dhcp\" or {{ address = \"192.168.1.10/24\", gateway = \"192.168.1.1\", dns = [\"192.168.1.1\"] }}"
                    ),
                ));
            }
            RawInterface::Static(config) => {
                let (address, prefix) = config
                    .address
                    .split_once('/')
                    .and_then(|(address, prefix)| {
                        Some((address.parse::<Ipv4Addr>().ok()?, prefix.parse::<u8>().ok()?))
                    })
                    .filter(|(_, prefix)| (1..=32).contains(prefix))
                    .ok_or_else(|| {
                        problem(
                            format!("{key} address"),
                            format!(
                                "{:?}: an IPv4 address with its prefix length, e.g. \"192.168.1.10/24\"",
                                config.address
                            ),
                        )
                    })?;
                let gateway = match &config.gateway {
                    None => None,
                    Some(text) => Some(text.parse::<Ipv4Addr>().map_err(|_| {
                        problem(
                            format!("{key} gateway"),
                            format!("{text:?}: an IPv4 address"),
                        )
                    })?),
                };
                let mut dns = Vec::new();
                for text in config.dns.unwrap_or_default() {
                    dns.push(text.parse::<IpAddr>().map_err(|_| {
                        problem(format!("{key} dns"), format!("{text:?}: an IP address"))
                    })?);
                }
                Interface::Static {
                    address,
                    prefix,
                    gateway,
                    dns,
                }
            }
        };
        interfaces.insert(name, interface);
    }
    let dhcp = interfaces
        .values()
        .filter(|interface| **interface == Interface::Dhcp)
        .count();
    if dhcp > 1 {
        return Err(problem(
            "[network] interfaces",
            "at most one interface can use dhcp (one supervised udhcpc is the network service)",
        ));
    }
    Ok(Network {
        hostname: raw.hostname,
        interfaces,
    })
}

pub fn ssh(raw: RawSsh) -> Result<Ssh, Problem> {
    match raw.server.as_deref() {
        Some("dropbear") => {}
        None => {
            return Err(problem(
                "[ssh] server",
                "missing: the only one is \"dropbear\"",
            ));
        }
        Some(other) => {
            return Err(problem(
                "[ssh] server",
                format!("unknown server {other:?}: the only one is \"dropbear\""),
            ));
        }
    }
    let port = raw.port.unwrap_or(22);
    if port == 0 {
        return Err(problem("[ssh] port", "give a port from 1 to 65535"));
    }
    let mut host_keys = Vec::new();
    for key in raw.host_keys.unwrap_or_default() {
        let path = PathBuf::from(&key);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !path.is_file() || !super::portable_name(name, 64, '.') {
            return Err(problem(
                "[ssh] host_keys",
                format!(
                    "{}: not a file with a plain name (note: make one with dropbearkey -t ed25519 -f dropbear_ed25519_host_key; relative to the board file)",
                    path.display()
                ),
            ));
        }
        host_keys.push(path);
    }
    Ok(Ssh { port, host_keys })
}

fn kiln_service(
    table: &str,
    name: &str,
    run: String,
    oneshot: bool,
    ready_fd: bool,
    after: Vec<String>,
) -> Service {
    Service {
        name: name.to_string(),
        what: Run::Shell(run),
        user: None,
        env: BTreeMap::new(),
        cwd: None,
        log: (!oneshot).then_some(Log {
            files: LOG_FILES,
            size: LOG_SIZE,
        }),
        after,
        oneshot,
        notification_fd: ready_fd.then_some(3),
        table: table.to_string(),
    }
}

/// kiln's own services: `network` (a longrun udhcpc, ready once an address is set, or a
/// oneshot for static addresses only) and `ssh` (dropbear, after `network`).
pub fn services(network: Option<&Network>, ssh: Option<&Ssh>) -> Vec<Service> {
    let mut services = Vec::new();
    if let Some(network) = network.filter(|n| !n.interfaces.is_empty()) {
        let mut lines = Vec::new();
        let mut dhcp = None;
        for (name, interface) in &network.interfaces {
            match interface {
                Interface::Dhcp => dhcp = Some(name.clone()),
                Interface::Static {
                    address,
                    prefix,
                    gateway,
                    ..
                } => {
                    lines.push(format!("ip link set {name} up"));
                    lines.push(format!("ip addr add {address}/{prefix} dev {name}"));
                    if let Some(gateway) = gateway {
                        lines.push(format!("ip route add default via {gateway} dev {name}"));
                    }
                }
            }
        }
        let oneshot = dhcp.is_none();
        if let Some(name) = &dhcp {
            // -f: stay in the foreground (supervised); the event script sets the address.
            // udhcpc closes fds above 2 before it runs the script (measured), so it cannot
            // say ready itself: s6-notifyoncheck runs the service's data/check (an IPv4
            // address on the interface) every 100 ms and writes the newline on fd 3.
            lines.push(format!(
                "exec s6-notifyoncheck -w 100 -n 0 udhcpc -f -i {name} -s {UDHCPC_SCRIPT}"
            ));
        }
        services.push(kiln_service(
            "[network]",
            "network",
            lines.join("\n"),
            oneshot,
            dhcp.is_some(),
            Vec::new(),
        ));
    }
    if let Some(ssh) = ssh {
        // -F foreground, -E log to stderr, -R make missing host keys at first connection.
        let run = format!("exec dropbear -F -E -R -p {}", ssh.port);
        let after = if services.is_empty() {
            Vec::new()
        } else {
            vec!["network".to_string()]
        };
        services.push(kiln_service("[ssh]", "ssh", run, false, false, after));
    }
    services
}
