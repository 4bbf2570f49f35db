"""The chaos harness's network: three Linux network namespaces on one bridge, and the faults
it can put on their links.

Layout (the same as deploy/netns/cluster-test.sh, on its own subnet so both can run at once):
a bridge in the root namespace holds `<subnet>.1/24`; namespace N (1..3) has a veth pair to the
bridge, `eth0` inside with `<subnet>.1N/24`. Clients run in the root namespace and reach every
broker through the bridge.

Faults, all undone by `heal()`. Each namespace gets an nftables table `inet chaos` with one
chain on the output hook; rules there drop what that broker sends:

- **partition** (`cut(a, b)`): a drops every packet to b, b every packet to a. Packets vanish
  silently (no reset, no ICMP): established TCP connections see no answers and new ones time
  out, as across a real partition. Client links (root namespace <-> broker) are not cut: a
  client can still reach a broker its peers cannot, which is where a stale leader would show.
- **loss** (`loss(n, percent)`): broker n drops that share of everything it sends (`numgen
  random`), to peers and clients: one-way loss.
- **slow link** (`slow(n, rate, latency)`): a token-bucket filter (tbf) on n's `eth0` egress:
  what n sends queues behind a rate limit for up to `latency` and is dropped past it. This
  stands for netem's fixed added latency, which kernels built without CONFIG_NET_SCH_NETEM
  (like the CI machines') do not have.

Every command is `ip`, `tc` (iproute2) or `nft` (nftables), with a timeout; a failing command
raises.
"""

import os
import shutil
import subprocess

COMMAND_TIMEOUT_S = 10


class NetnsUnavailable(Exception):
    """Network namespaces cannot be created here (not root, unprivileged container)."""


def run(*argv, check=True):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


class Network:
    def __init__(self, subnet, size=3):
        self.subnet = subnet
        self.size = size
        # Interface names are at most 15 bytes: a per-process tag keeps parallel runs apart.
        self.tag = str(os.getpid() % 100000)
        self.bridge = f"scbr{self.tag}"
        self.created_bridge = False
        self.namespaces = []
        self.cuts = set()  # frozenset({a, b}) pairs currently cut
        self.lossy = set()  # nodes with a loss rule
        self.slowed = set()  # nodes with a rate limit

    def namespace(self, node):
        return f"sluice-chaos-{self.tag}-{node}"

    def address(self, node):
        return f"{self.subnet}.1{node}"

    def preflight(self):
        """Raises NetnsUnavailable if this machine cannot create namespaces; RuntimeError if the
        subnet is in use."""
        if os.geteuid() != 0:
            raise NetnsUnavailable("not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)")
        for tool, package in (("ip", "iproute2"), ("tc", "iproute2"), ("nft", "nftables")):
            if shutil.which(tool) is None:
                raise NetnsUnavailable(f"'{tool}' is not installed (Debian package {package})")
        probe = f"sluice-chaos-{self.tag}-probe"
        result = run("ip", "netns", "add", probe, check=False)
        if result.returncode != 0:
            raise NetnsUnavailable(f"'ip netns add' is not permitted here: {result.stderr.strip()}")
        run("ip", "netns", "delete", probe)
        if f"inet {self.subnet}." in run("ip", "-4", "addr", "show").stdout:
            raise RuntimeError(f"{self.subnet}.0/24 is already configured here (another run?); set CHAOS_SUBNET")

    def create(self, out):
        # For scripts/chaos.sh's cleanup if this Python process dies without its own.
        with open(os.path.join(out, "netns-tag"), "w", encoding="utf-8") as tag_file:
            tag_file.write(f"{self.tag}\n")
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self.created_bridge = True
        run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for node in range(1, self.size + 1):
            namespace = self.namespace(node)
            run("ip", "netns", "add", namespace)
            self.namespaces.append(namespace)
            host, peer = f"sch{self.tag}-{node}", f"scp{self.tag}-{node}"
            run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
            run("ip", "link", "set", host, "master", self.bridge, "up")
            run("ip", "link", "set", peer, "netns", namespace)
            run("ip", "-n", namespace, "link", "set", peer, "name", "eth0")
            run("ip", "-n", namespace, "addr", "add", f"{self.address(node)}/24", "dev", "eth0")
            run("ip", "-n", namespace, "link", "set", "eth0", "up")
            run("ip", "-n", namespace, "link", "set", "lo", "up")
        self.prepare_faults()

    def destroy(self):
        for namespace in self.namespaces:
            run("ip", "netns", "delete", namespace, check=False)
        self.namespaces = []
        if self.created_bridge:
            run("ip", "link", "delete", self.bridge, check=False)
            self.created_bridge = False

    # ------------------------------------------------------------------ faults

    def nft(self, node, *rule):
        run("ip", "netns", "exec", self.namespace(node), "nft", *rule)

    def prepare_faults(self):
        """The empty `inet chaos` table and output chain in every namespace."""
        for node in range(1, self.size + 1):
            self.nft(node, "add", "table", "inet", "chaos")
            self.nft(node, "add", "chain", "inet", "chaos", "output",
                     "{ type filter hook output priority 0; policy accept; }")

    def cut(self, a, b):
        """Drops every packet between brokers a and b (both directions)."""
        if frozenset((a, b)) in self.cuts:
            return
        self.nft(a, "add", "rule", "inet", "chaos", "output", "ip", "daddr", self.address(b), "drop")
        self.nft(b, "add", "rule", "inet", "chaos", "output", "ip", "daddr", self.address(a), "drop")
        self.cuts.add(frozenset((a, b)))

    def isolate(self, node):
        """Cuts node from every other broker (with 3 brokers: the minority/majority split)."""
        for other in range(1, self.size + 1):
            if other != node:
                self.cut(node, other)

    def bridge_split(self, middle):
        """The two other brokers cannot reach each other; both still reach `middle`."""
        a, b = [n for n in range(1, self.size + 1) if n != middle]
        self.cut(a, b)

    def loss(self, node, percent):
        """Broker `node` drops `percent` % of the packets it sends."""
        self.nft(node, "add", "rule", "inet", "chaos", "output", "numgen", "random", "mod", "100",
                 "<", str(percent), "drop")
        self.lossy.add(node)

    def slow(self, node, rate, latency):
        """What broker `node` sends is limited to `rate` (tc syntax, e.g. 512kbit) and queued for
        at most `latency` (e.g. 200ms)."""
        run("ip", "netns", "exec", self.namespace(node), "tc", "qdisc", "replace", "dev", "eth0", "root",
            "tbf", "rate", rate, "burst", "16kb", "latency", latency)
        self.slowed.add(node)

    def heal(self):
        """Removes every cut, every loss rule and every rate limit."""
        if self.cuts or self.lossy:
            for node in range(1, self.size + 1):
                self.nft(node, "flush", "chain", "inet", "chaos", "output")
        self.cuts.clear()
        self.lossy.clear()
        for node in list(self.slowed):
            run("ip", "netns", "exec", self.namespace(node), "tc", "qdisc", "del", "dev", "eth0", "root", check=False)
        self.slowed.clear()
