package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kisee-pasee/suite/internal/pasee/store"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// GroupScale sizes the group store of scenario 4.
type GroupScale struct {
	// Groups counts every group, staff groups included (each group X
	// has its X.staff, as Pasee creates them); Memberships every
	// membership.
	Groups, Memberships int
}

// segmentNames name the levels of the tree: org3.div1.dept4.team0...
func segmentNames() []string {
	return []string{"org", "div", "dept", "team", "squad", "unit", "cell", "pod", "crew", "desk", "seat", "spot", "leaf", "bud", "tip"}
}

// branching is how many children a group has at each depth (the last
// value repeats): a wide top and a fine-grained bottom, like an
// organisation chart.
func branching() []int { return []int{10, 6, 5, 4, 4, 3, 3} }

// groupTree is a generated tree of (non-staff) groups, parents before
// children.
type groupTree struct {
	names  []string
	depth  []int // 1 for a root group
	parent []int // -1 for a root group
}

// buildTree makes real groups breadth first, spreading each level's
// children over all its parents until real groups exist.
func buildTree(real int) *groupTree {
	t := &groupTree{}
	segmentNames, branching := segmentNames(), branching()
	add := func(name string, depth, parent int) {
		t.names = append(t.names, name)
		t.depth = append(t.depth, depth)
		t.parent = append(t.parent, parent)
	}
	for i := 0; i < branching[0] && len(t.names) < real; i++ {
		add(fmt.Sprintf("%s%d", segmentNames[0], i), 1, -1)
	}
	for lo, d := 0, 1; len(t.names) < real && d < len(segmentNames); d++ {
		hi := len(t.names) // the parents: groups [lo, hi) at depth d
		b := branching[min(d, len(branching)-1)]
		if d == len(segmentNames)-1 {
			b = real // the deepest level takes whatever is left
		}
		for k := 0; k < b && len(t.names) < real; k++ {
			for p := lo; p < hi && len(t.names) < real; p++ {
				add(fmt.Sprintf("%s.%s%d", t.names[p], segmentNames[d], k), d+1, p)
			}
		}
		lo = hi
	}
	return t
}

// groupData is scenario 4's generated store content.
type groupData struct {
	tree *groupTree
	// users are the members' names; memberships pairs of indexes: group
	// g (g < len(tree.names): a group, else the staff group of
	// g-len(tree.names)) and user u.
	users      []string
	memberUser []int32
	memberGrp  []int32
	// target is the depth-6 group the admin checks are made on (under
	// admin's depth-1 group); targets are all of them.
	targets []string
}

// Special users of scenario 4 (Pasee names; the Kisee usernames are
// without the "kisee-" prefix).
const (
	user200    = "kisee-bench200"   // in 200 groups
	userAdmin  = "kisee-benchadmin" // in org0.staff: administers org0's subtree
	userStaff  = "kisee-benchstaff" // in staff: administers everything
	newMembers = "kisee-new%07d"
)

// groupName returns the name of group index g of d (staff groups after
// the real ones).
func (d *groupData) groupName(g int32) string {
	n := len(d.tree.names)
	if int(g) < n {
		return d.tree.names[g]
	}
	if int(g) == 2*n {
		return "staff"
	}
	return d.tree.names[int(g)-n] + ".staff"
}

// generateGroups builds the tree and the memberships of scale,
// deterministically.
func generateGroups(scale GroupScale) (*groupData, error) {
	real := scale.Groups / 2
	t := buildTree(real)
	n := len(t.names)
	d := &groupData{tree: t}
	// Subtrees of the depth-2 groups, where users have their home.
	var homes [][]int32
	home := make([]int, n) // index in homes of each group's depth-2 ancestor, -1 at depth 1
	for g := range n {
		switch {
		case t.depth[g] == 1:
			home[g] = -1
		case t.depth[g] == 2:
			home[g] = len(homes)
			homes = append(homes, []int32{int32(g)})
		default:
			home[g] = home[t.parent[g]]
			homes[home[g]] = append(homes[home[g]], int32(g))
		}
	}
	for g := range n {
		if t.depth[g] == 6 && strings.HasPrefix(t.names[g], "org0.") {
			d.targets = append(d.targets, t.names[g])
		}
	}
	if len(d.targets) == 0 || len(homes) == 0 {
		return nil, fmt.Errorf("%d groups make no depth-6 group: use at least 13000", scale.Groups)
	}
	rng := rand.New(rand.NewPCG(8, 1))
	add := func(u int, picked []int32, g int32) []int32 {
		if slices.Contains(picked, g) {
			return picked
		}
		d.memberUser = append(d.memberUser, int32(u))
		d.memberGrp = append(d.memberGrp, g)
		return append(picked, g)
	}
	// The special users first.
	var org0, elsewhere []int32
	for g := range n {
		if strings.HasPrefix(t.names[g], "org0.") {
			org0 = append(org0, int32(g))
		} else if t.depth[g] > 1 {
			elsewhere = append(elsewhere, int32(g))
		}
	}
	d.users = append(d.users, user200, userAdmin, userStaff)
	var picked []int32
	for len(picked) < 100 {
		picked = add(0, picked, org0[rng.IntN(len(org0))])
	}
	for len(picked) < 200 {
		picked = add(0, picked, elsewhere[rng.IntN(len(elsewhere))])
	}
	picked = add(1, nil, int32(n+slices.Index(t.names, "org0"))) // org0.staff
	for len(picked) < 20 {
		picked = add(1, picked, elsewhere[rng.IntN(len(elsewhere))])
	}
	picked = add(2, nil, int32(2*n)) // staff
	for len(picked) < 10 {
		picked = add(2, picked, elsewhere[rng.IntN(len(elsewhere))])
	}
	// Everyone else: a home subtree, most groups in it, some anywhere, and
	// now and then the staff group of one of them.
	for u := len(d.users); len(d.memberUser) < scale.Memberships; u++ {
		d.users = append(d.users, fmt.Sprintf("kisee-m%07d", u))
		h := homes[rng.IntN(len(homes))]
		k := min(1+int(rng.ExpFloat64()*9), 60)
		picked = picked[:0]
		for len(picked) < k && len(d.memberUser) < scale.Memberships {
			var g int32
			switch r := rng.Float64(); {
			case r < 0.8:
				g = h[rng.IntN(len(h))]
			case r < 0.95:
				g = int32(rng.IntN(n))
			default:
				g = int32(n) + h[rng.IntN(len(h))] // a staff group
			}
			picked = add(u, picked, g)
		}
	}
	return d, nil
}

// GroupCase is one measurement of scenario 4.
type GroupCase struct {
	Name string
	// Goal is the p99 to stay under (0: none).
	Goal    time.Duration
	Summary Summary
}

// GroupResults is scenario 4 on one store.
type GroupResults struct {
	Backend                       string
	Groups, Memberships, Users    int
	MaxDepth, Targets             int
	Generate, Load                time.Duration
	Cases                         []GroupCase
	BulkWithoutForeignKeyTriggers bool
}

// RunGroups fills a fresh store on backend with scale's groups and
// memberships, starts Pasee (and a Kisee for the logins) on it and
// measures the p99 of the operations whose cost grows with groups.
func RunGroups(ctx context.Context, env *Env, plan Plan, backend string, scale GroupScale) (GroupResults, error) {
	res := GroupResults{Backend: backend}
	logf("scenario 4 (%s): %d groups, %d memberships", backend, scale.Groups, scale.Memberships)
	t0 := time.Now()
	data, err := generateGroups(scale)
	if err != nil {
		return res, err
	}
	res.Generate = time.Since(t0)
	res.Groups = 2*len(data.tree.names) + 1
	res.Memberships = len(data.memberUser)
	res.Users = len(data.users)
	res.MaxDepth = slices.Max(data.tree.depth)
	res.Targets = len(data.targets)
	storeURL, err := env.StoreURL(ctx, backend, "pasee-groups")
	if err != nil {
		return res, err
	}
	st, err := store.Open(ctx, storeURL, nil, true)
	if err != nil {
		return res, err
	}
	st.Close()
	t1 := time.Now()
	if backend == "postgres" {
		res.BulkWithoutForeignKeyTriggers, err = loadPostgres(ctx, storeURL, data)
	} else {
		err = loadSQLite(ctx, storeURL, data)
	}
	if err != nil {
		return res, fmt.Errorf("bulk load: %w", err)
	}
	res.Load = time.Since(t1)
	logf("  generated in %s, loaded in %s: %d groups (depth ≤ %d), %d users, %d memberships",
		res.Generate.Round(time.Millisecond), res.Load.Round(time.Millisecond), res.Groups, res.MaxDepth, res.Users, res.Memberships)

	kiseeStore, err := env.StoreURL(ctx, "sqlite", "kisee-groups")
	if err != nil {
		return res, err
	}
	if err := SeedKisee(ctx, kiseeStore, []string{"bench200", "benchadmin", "benchstaff"}); err != nil {
		return res, err
	}
	kisee, err := env.StartKisee(ctx, kiseeStore)
	if err != nil {
		return res, err
	}
	defer env.Forget(kisee) //nolint:errcheck // stopping at the end of the scenario
	pasee, err := env.StartPasee(ctx, storeURL, kisee.URL)
	if err != nil {
		return res, err
	}
	defer env.Forget(pasee) //nolint:errcheck // stopping at the end of the scenario
	client := NewClient(2)
	defer client.Close()
	login := func(user string) (Pair, error) {
		b, err := client.Expect(ctx, 201, "POST", pasee.URL+"/tokens/?idp=kisee", loginBody(strings.TrimPrefix(user, "kisee-"), benchPassword), "")
		if err != nil {
			return Pair{}, err
		}
		return parsePair(b)
	}
	p200, err := login(user200)
	if err != nil {
		return res, err
	}
	admin, err := login(userAdmin)
	if err != nil {
		return res, err
	}
	staff, err := login(userStaff)
	if err != nil {
		return res, err
	}
	if g, ok := accessGroups(p200.Access); ok && g != 200 {
		return res, fmt.Errorf("%s's token holds %d groups, want 200", user200, g)
	}

	meter := cpuMeter{servers: []int{pasee.Pid()}}
	spec := LoadSpec{Concurrency: 1, MaxRequests: plan.GroupRequests, MaxDuration: plan.LevelTime, Warmup: 5}
	chain := p200.Refresh
	seq := 0
	target := func() string {
		seq++
		return data.targets[seq%len(data.targets)]
	}
	cases := []struct {
		name string
		goal time.Duration
		fn   RequestFunc
	}{
		{"refresh, user in 200 groups", 5 * time.Millisecond, func(ctx context.Context, _ int) error {
			b, err := client.Expect(ctx, 201, "POST", pasee.URL+"/tokens/?refresh", nil, chain)
			if err != nil {
				return err
			}
			p, err := parsePair(b)
			if err == nil {
				chain = p.Refresh
			}
			return err
		}},
		{"GET /groups/<depth 6>/ by org0 staff", 2 * time.Millisecond, func(ctx context.Context, _ int) error {
			_, err := client.Expect(ctx, 200, "GET", pasee.URL+"/groups/"+target()+"/", nil, admin.Access)
			return err
		}},
		{"POST /groups/<depth 6>/ by org0 staff", 2 * time.Millisecond, func(ctx context.Context, _ int) error {
			body := fmt.Appendf(nil, `{"username":%q}`, fmt.Sprintf(newMembers, seq))
			_, err := client.Expect(ctx, 201, "POST", pasee.URL+"/groups/"+target()+"/", body, admin.Access)
			return err
		}},
		{"GET /groups/?user= (200 groups) by the user", 10 * time.Millisecond, func(ctx context.Context, _ int) error {
			_, err := client.Expect(ctx, 200, "GET", pasee.URL+"/groups/?user="+url.QueryEscape(user200), nil, p200.Access)
			return err
		}},
		{"GET /groups/?user= (200 groups) by staff", 10 * time.Millisecond, func(ctx context.Context, _ int) error {
			_, err := client.Expect(ctx, 200, "GET", pasee.URL+"/groups/?user="+url.QueryEscape(user200), nil, staff.Access)
			return err
		}},
		{"GET /groups/?user= (200 groups) by org0 staff", 10 * time.Millisecond, func(ctx context.Context, _ int) error {
			_, err := client.Expect(ctx, 200, "GET", pasee.URL+"/groups/?user="+url.QueryEscape(user200), nil, admin.Access)
			return err
		}},
	}
	for _, c := range cases {
		err := plan.quiet(func() ([]Summary, error) {
			s := RunLoad(ctx, spec, meter, c.fn)
			describe(c.name, s)
			return []Summary{s}, ctx.Err()
		}, func(runs []Summary) {
			res.Cases = append(res.Cases, GroupCase{Name: c.name, Goal: c.goal, Summary: runs[0]})
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// accessGroups counts the groups of an access token, without verifying it.
func accessGroups(access string) (int, bool) {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return 0, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0, false
	}
	payload := string(b)
	i := strings.Index(payload, `"groups":[`)
	if i < 0 {
		return 0, false
	}
	rest := payload[i+len(`"groups":[`):]
	end := strings.IndexByte(rest, ']')
	if end <= 0 {
		return 0, end == 0
	}
	return strings.Count(rest[:end], ",") + 1, true
}

// loadPostgres copies data into the Pasee tables of storeURL. Foreign-key
// triggers are off during the copy when the role may do so (the data is
// consistent by construction); it reports whether they were.
func loadPostgres(ctx context.Context, storeURL string, d *groupData) (bool, error) {
	conn, err := pgx.Connect(ctx, storeURL)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit, a no-op
	replica := true
	if _, err := tx.Exec(ctx, `SAVEPOINT role`); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		replica = false
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT role`); err != nil {
			return false, err
		}
	}
	now := time.Now().UnixMilli()
	i := 0
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pasee_users"}, []string{"name", "is_banned", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(d.users) {
				return nil, nil
			}
			i++
			return []any{d.users[i-1], false, now}, nil
		})); err != nil {
		return replica, fmt.Errorf("users: %w", err)
	}
	n := len(d.tree.names)
	i = 0
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pasee_groups"}, []string{"name", "parent_name", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == 2*n {
				return nil, nil
			}
			g := i
			i++
			if g < n {
				var parent any
				if p := d.tree.parent[g]; p >= 0 {
					parent = d.tree.names[p]
				}
				return []any{d.tree.names[g], parent, now}, nil
			}
			return []any{d.tree.names[g-n] + ".staff", d.tree.names[g-n], now}, nil
		})); err != nil {
		return replica, fmt.Errorf("groups: %w", err)
	}
	i = 0
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pasee_memberships"}, []string{"group_name", "user_name", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(d.memberUser) {
				return nil, nil
			}
			i++
			return []any{d.groupName(d.memberGrp[i-1]), d.users[d.memberUser[i-1]], now}, nil
		})); err != nil {
		return replica, fmt.Errorf("memberships: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return replica, err
	}
	_, err = conn.Exec(ctx, `ANALYZE pasee_users, pasee_groups, pasee_memberships`)
	return replica, err
}

// loadSQLite inserts data into the Pasee tables of the SQLite store at
// storeURL, with multi-row INSERTs in one transaction, foreign keys off.
func loadSQLite(ctx context.Context, storeURL string, d *groupData) error {
	t, err := sqldb.ParseURL(storeURL)
	if err != nil {
		return err
	}
	db, err := sqldb.OpenSQLite(t.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	now := time.Now().UnixMilli()
	n := len(d.tree.names)
	if err := insertRows(ctx, tx, `INSERT INTO pasee_users (name, is_banned, created_at) VALUES `, 3, len(d.users), func(i int) []any {
		return []any{d.users[i], false, now}
	}); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO pasee_groups (name, parent_name, created_at) VALUES `, 3, 2*n, func(g int) []any {
		if g < n {
			var parent any
			if p := d.tree.parent[g]; p >= 0 {
				parent = d.tree.names[p]
			}
			return []any{d.tree.names[g], parent, now}
		}
		return []any{d.tree.names[g-n] + ".staff", d.tree.names[g-n], now}
	}); err != nil {
		return fmt.Errorf("groups: %w", err)
	}
	// In primary-key order, so that the table (WITHOUT ROWID) grows at its end.
	order := make([]int, len(d.memberUser))
	names := make([]string, len(d.memberUser))
	for i := range order {
		order[i] = i
		names[i] = d.groupName(d.memberGrp[i])
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := strings.Compare(names[a], names[b]); c != 0 {
			return c
		}
		return strings.Compare(d.users[d.memberUser[a]], d.users[d.memberUser[b]])
	})
	if err := insertRows(ctx, tx, `INSERT INTO pasee_memberships (group_name, user_name, created_at) VALUES `, 3, len(order), func(i int) []any {
		j := order[i]
		return []any{names[j], d.users[d.memberUser[j]], now}
	}); err != nil {
		return fmt.Errorf("memberships: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, `ANALYZE`)
	return err
}

// insertRows inserts n rows of cols columns with multi-row INSERTs of a
// prepared statement.
func insertRows(ctx context.Context, tx *sql.Tx, prefix string, cols, n int, row func(int) []any) error {
	const per = 300
	stmt := func(rows int) string {
		var q strings.Builder
		q.WriteString(prefix)
		for r := range rows {
			if r > 0 {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			for c := range cols {
				if c > 0 {
					q.WriteString(", ")
				}
				fmt.Fprintf(&q, "$%d", r*cols+c+1)
			}
			q.WriteByte(')')
		}
		return q.String()
	}
	full, err := tx.PrepareContext(ctx, stmt(per))
	if err != nil {
		return err
	}
	defer full.Close()
	args := make([]any, 0, per*cols)
	for i := 0; i < n; i += per {
		m := min(per, n-i)
		args = args[:0]
		for r := range m {
			args = append(args, row(i+r)...)
		}
		if m == per {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, stmt(m), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
