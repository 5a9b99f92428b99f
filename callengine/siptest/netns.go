package siptest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// NAT is a home router the test builds out of network namespaces: this
// (the test's own) namespace is the LAN at InsideIP, a router namespace
// masquerades what leaves toward the outside namespace (OutsideNS, at
// OutsideIP), which has no route back to the LAN. Only the benchmarking
// range 198.18.0.0/15 is used; everything goes when the test ends.
type NAT struct {
	RouterNS, OutsideNS string
	InsideIP, OutsideIP string
	// PublicIP is the router's outside address, the LAN's address as the
	// outside sees it.
	PublicIP string
}

// StartNAT builds the router. It needs root (and ip, nft); without them
// the test is skipped with the reason.
func StartNAT(t testing.TB) *NAT {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the NAT test builds network namespaces and needs root")
	}
	Require(t, "ip", "nft")
	s := fmt.Sprintf("%04x", rand.IntN(0x10000))
	n := &NAT{RouterNS: "rpr" + s, OutsideNS: "rpo" + s, InsideIP: "198.18.1.1", OutsideIP: "198.18.2.2", PublicIP: "198.18.2.1"}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", n.RouterNS).Run()
		_ = exec.Command("ip", "netns", "del", n.OutsideNS).Run()
	})
	lan, lanR, wanR, wan := "rpa"+s, "rpb"+s, "rpc"+s, "rpd"+s
	n.run(t, "ip netns add "+n.RouterNS, "ip netns add "+n.OutsideNS,
		"ip link add "+lan+" type veth peer name "+lanR+" netns "+n.RouterNS,
		"ip addr add "+n.InsideIP+"/24 dev "+lan, "ip link set "+lan+" up",
		"ip route add 198.18.2.0/24 via 198.18.1.2",
		"ip -n "+n.RouterNS+" addr add 198.18.1.2/24 dev "+lanR, "ip -n "+n.RouterNS+" link set "+lanR+" up",
		"ip -n "+n.RouterNS+" link set lo up",
		"ip -n "+n.RouterNS+" link add "+wanR+" type veth peer name "+wan+" netns "+n.OutsideNS,
		"ip -n "+n.RouterNS+" addr add "+n.PublicIP+"/24 dev "+wanR, "ip -n "+n.RouterNS+" link set "+wanR+" up",
		"ip -n "+n.OutsideNS+" addr add "+n.OutsideIP+"/24 dev "+wan, "ip -n "+n.OutsideNS+" link set "+wan+" up",
		"ip -n "+n.OutsideNS+" link set lo up",
		"ip netns exec "+n.RouterNS+" sysctl -qw net.ipv4.ip_forward=1",
	)
	nft := exec.Command("ip", "netns", "exec", n.RouterNS, "nft", "-f", "-")
	// A home router's firewall too: what arrives unasked on the outside
	// is dropped, and so leaves no connection state behind. Without it a
	// peer's RTP that reaches the router before our first packet would
	// claim the mapping's port, and our own packets would then leave from
	// another one (Linux keeps state for unanswered inbound datagrams).
	nft.Stdin = strings.NewReader("table ip nat {\n chain post {\n  type nat hook postrouting priority 100;\n  oifname \"" + wanR + "\" masquerade\n }\n}\n" +
		"table ip filter {\n chain input {\n  type filter hook input priority 0;\n  iifname \"" + wanR + "\" ct state new drop\n }\n}\n")
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	return n
}

// SetUDPTimeout shortens how long the router keeps an idle UDP mapping
// (conntrack, in the router's namespace alone).
func (n *NAT) SetUDPTimeout(t testing.TB, seconds int) {
	t.Helper()
	n.run(t, fmt.Sprintf("ip netns exec %s sysctl -qw net.netfilter.nf_conntrack_udp_timeout=%d net.netfilter.nf_conntrack_udp_timeout_stream=%d",
		n.RouterNS, seconds, seconds))
}

func (n *NAT) run(t testing.TB, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		f := strings.Fields(c)
		if out, err := exec.Command(f[0], f[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
}
