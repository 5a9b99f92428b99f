package locate

import (
	"slices"

	"github.com/miekg/dns"
)

// orderSRV sorts SRV records by priority, lowest first, and within a
// priority in the weighted random order of RFC 2782: the records with
// weight 0 first, then repeatedly pick a number in [0, sum of remaining
// weights] and take the first record whose running sum reaches it.
func orderSRV(recs []*dns.SRV, intn func(int) int) []*dns.SRV {
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b *dns.SRV) int {
		if a.Priority != b.Priority {
			return int(a.Priority) - int(b.Priority)
		}
		if (a.Weight == 0) != (b.Weight == 0) {
			if a.Weight == 0 {
				return -1
			}
			return 1
		}
		return 0
	})
	out := make([]*dns.SRV, 0, len(recs))
	for len(recs) > 0 {
		end := 1
		for end < len(recs) && recs[end].Priority == recs[0].Priority {
			end++
		}
		group := recs[:end]
		for len(group) > 0 {
			sum := 0
			for _, r := range group {
				sum += int(r.Weight)
			}
			pick, run := intn(sum+1), 0
			i := 0
			for ; i < len(group)-1; i++ {
				if run += int(group[i].Weight); run >= pick {
					break
				}
			}
			out = append(out, group[i])
			group = slices.Delete(group, i, i+1)
		}
		recs = recs[end:]
	}
	return out
}
