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
