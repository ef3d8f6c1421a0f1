//! `[network]` and `[ssh]` into the image: `/etc/hostname`, `/etc/resolv.conf` for
//! static name servers, udhcpc's event script, and dropbear's `/etc/dropbear` with the
//! board's own host keys. The `network` and `ssh` services themselves are declared
//! services (see `config::network`), installed with the others.

use std::fmt::Write as _;

use anyhow::Result;

use crate::config::Board;
use crate::config::network::{Interface, UDHCPC_SCRIPT};
use crate::tree::content::Content;
use crate::tree::{ArchivePath, Kind, Meta, Node, Tree};

/// udhcpc's event script: sets the address, default route and name servers it was given.
const UDHCPC: &str = r#"#!/bin/sh
# udhcpc's event script (kiln, from [network]): configures $interface on bound and renew.
# The network service is ready once the address is set (its data/check, run by
# s6-notifyoncheck), so services after "network" start with an address.
case $1 in
deconfig)
    ip addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    for gateway in $router; do
        ip route replace default via "$gateway" dev "$interface"
        break
    done
    if [ -n "$dns" ]; then
        for server in $dns; do echo "nameserver $server"; done > /etc/resolv.conf
    fi
    echo "network: $interface $ip/${mask:-24} via ${router:-none}"
    ;;
esac
exit 0
"#;

pub fn add(image: &mut Tree, board: &Board) -> Result<()> {
    let origin = format!("{} [network]", board.file.display());
    let file = |text: String, mode: u32| {
        Node::new(Kind::File(Content::inline(text)), Meta::root(mode), &origin)
    };
    if let Some(network) = &board.network {
        if let Some(hostname) = &network.hostname {
            image.replace(
                ArchivePath::new("etc/hostname")?,
                file(format!("{hostname}\n"), 0o644),
            )?;
        }
        let mut resolv = String::new();
        for interface in network.interfaces.values() {
            if let Interface::Static { dns, .. } = interface {
                for server in dns {
                    let _ = writeln!(resolv, "nameserver {server}");
                }
            }
        }
        if !resolv.is_empty() {
            image.replace(ArchivePath::new("etc/resolv.conf")?, file(resolv, 0o644))?;
        }
        if let Some((name, _)) = network
            .interfaces
            .iter()
            .find(|(_, i)| **i == Interface::Dhcp)
        {
            image.replace(
                ArchivePath::new(UDHCPC_SCRIPT)?,
                file(UDHCPC.to_string(), 0o755),
            )?;
            let check = format!(
                "#!/bin/sh\n# The network service is ready once {name} has an IPv4 address (s6-notifyoncheck runs this).\nip -4 -o addr show dev {name} | grep -q inet\n"
            );
            image.replace(
                ArchivePath::new("etc/s6/services/network/data/check")?,
                file(check, 0o755),
            )?;
        }
    }
    if let Some(ssh) = &board.ssh {
        let origin = format!("{} [ssh]", board.file.display());
        let dir = ArchivePath::new("etc/dropbear")?;
        image.replace(
            dir.clone(),
            Node::new(Kind::Dir, Meta::root(0o700), &origin),
        )?;
        for key in &ssh.host_keys {
            let name = key.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let bytes = crate::host::input::read(key, 64 << 10, "a host key")?;
            let node = Node::new(
                Kind::File(Content::inline(bytes)),
                Meta::root(0o600),
                &origin,
            );
            image.replace(dir.join(name)?, node)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostname, static name servers, the udhcpc script and check, dropbear's directory
    /// and the board's own host key (0600), and kiln's network and ssh services in order.
    #[test]
    fn network_and_ssh_files() {
        let dir = std::env::temp_dir().join(format!("kiln-network-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dropbear_ed25519_host_key"), "KEY").unwrap();
        let path = dir.join("b.toml");
        std::fs::write(
            &path,
            "arch = \"x86_64\"\n[qemu]\nmachine = \"q35\"\nconsole = \"ttyS0\"\n\
             [packages]\ninclude = [\"dropbear-bin\"]\n\
             [network]\nhostname = \"box\"\ninterfaces.eth0 = \"dhcp\"\n\
             interfaces.eth1 = { address = \"192.168.7.2/24\", gateway = \"192.168.7.1\", dns = [\"192.168.7.1\", \"::1\"] }\n\
             [ssh]\nserver = \"dropbear\"\nport = 2022\nhost_keys = [\"dropbear_ed25519_host_key\"]\n\
             [services.web]\nrun = \"httpd -f\"\nafter = [\"network\"]\n",
        )
        .unwrap();
        let board = Board::load(&path).unwrap();
        let mut tree = Tree::new();
        add(&mut tree, &board).unwrap();
        crate::rootfs::services::add(&mut tree, &board).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let text = |path: &str| {
            let node = tree.get(&ArchivePath::new(path).unwrap()).unwrap();
            let Kind::File(content) = &node.kind else {
                panic!("{path}")
            };
            (
                String::from_utf8(content.read_all().unwrap()).unwrap(),
                node.meta.mode,
            )
        };
        assert_eq!(text("etc/hostname"), ("box\n".to_string(), 0o644));
        assert_eq!(
            text("etc/resolv.conf").0,
            "nameserver 192.168.7.1\nnameserver ::1\n"
        );
        assert_eq!(
            text("etc/dropbear/dropbear_ed25519_host_key"),
            ("KEY".to_string(), 0o600)
        );
        assert!(
            text("etc/s6/services/network/data/check")
                .0
                .contains("ip -4 -o addr show dev eth0")
        );
        let run = text("etc/s6/services/network/run").0;
        assert!(
            run.contains("ip addr add 192.168.7.2/24 dev eth1")
                && run.contains("ip route add default via 192.168.7.1 dev eth1")
                && run
                    .contains("s6-notifyoncheck -w 100 -n 0 udhcpc -f -i eth0 -s /etc/kiln/udhcpc"),
            "{run}"
        );
        assert_eq!(text("etc/s6/services/network/notification-fd").0, "3\n");
        assert!(
            text("etc/s6/services/ssh/run")
                .0
                .contains("exec dropbear -F -E -R -p 2022")
        );
        assert_eq!(text("etc/s6/waves").0, "network\nssh web\n");
    }
}
