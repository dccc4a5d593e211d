package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stokehq/stoke/internal/config"
)

// Definition is one deployed function as the cluster stores it: its
// settings as the deploying node parsed them, its version, and the
// object holding its files after the build.
type Definition struct {
	Function    *config.Function `json:"function"`
	SecretEnv   []string         `json:"secret_env,omitempty"`
	Fingerprint string           `json:"fingerprint"`
	Version     int              `json:"version"`
	Artifact    string           `json:"artifact"` // object name
	Digest      string           `json:"digest"`   // SHA-256 of the object
	Node        string           `json:"node"`     // the node that built it
	Deployed    time.Time        `json:"deployed"`
	// rev is the KV revision it was read at (0: not stored yet), for
	// compare-and-swap.
	rev uint64
}

// ErrConflict is a deploy that lost a race: another node changed the
// function between this node's read and its write.
var ErrConflict = errors.New("cluster: the function was changed by another deploy meanwhile")

func fnKey(name string) string { return "fn." + name }

// Definitions returns every stored function definition by name.
func (n *Node) Definitions(ctx context.Context) (out map[string]*Definition, err error) {
	err = retry(ctx, func() error {
		out, err = n.definitions(ctx)
		return err
	})
	return out, err
}

// definitions reads the latest value under every key through one watcher
// and refuses (for retry to try again) a view older than fnRev. Neither
// JetStream's direct gets nor its consumers promise to read the writes
// before them: they may be served by a replica still catching up. Acting
// on such a view made a node that had just deployed version 2 follow "the
// cluster" back to version 1 (TestClusterFunctionsAreClusterState), and a
// listing could miss a function just created on another node.
func (n *Node) definitions(ctx context.Context) (map[string]*Definition, error) {
	w, err := n.kvFns.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading functions: %w", err)
	}
	defer w.Stop()
	out := map[string]*Definition{}
	var newest uint64
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cluster: reading functions: %w", ctx.Err())
		case e, ok = <-w.Updates():
		}
		if !ok {
			return nil, errors.New("cluster: reading functions: the watch ended early")
		}
		if e == nil { // every current value has been delivered
			break
		}
		newest = max(newest, e.Revision())
		if e.Operation() != jetstream.KeyValuePut {
			continue // deleted or purged
		}
		d, err := decodeDefinition(e)
		if err != nil {
			n.log.Warn("cluster: unreadable function definition skipped", "key", e.Key(), "err", err)
			continue
		}
		out[d.Function.Name] = d
	}
	if seen := n.fnRev.Load(); newest < seen {
		return nil, fmt.Errorf("cluster: reading functions: a replica behind (revision %d, this node has seen %d)", newest, seen)
	}
	n.sawFns(newest)
	return out, nil
}

// sawFns raises fnRev to rev.
func (n *Node) sawFns(rev uint64) {
	for {
		cur := n.fnRev.Load()
		if rev <= cur || n.fnRev.CompareAndSwap(cur, rev) {
			return
		}
	}
}

func decodeDefinition(e jetstream.KeyValueEntry) (*Definition, error) {
	d := &Definition{}
	if err := json.Unmarshal(e.Value(), d); err != nil {
		return nil, err
	}
	if d.Function == nil || fnKey(d.Function.Name) != e.Key() {
		return nil, fmt.Errorf("definition under %s names another function", e.Key())
	}
	d.Function.SecretEnv = map[string]bool{}
	for _, k := range d.SecretEnv {
		d.Function.SecretEnv[k] = true
	}
	d.rev = e.Revision()
	return d, nil
}

// Publish packs f's files (its cwd after the build, less skip) into the
// object store and returns its next definition: prev's version plus one
// (1 without prev). Nothing changes for other nodes until Commit.
func (n *Node) Publish(ctx context.Context, f *config.Function, skip []string, prev *Definition) (*Definition, error) {
	tmp, err := os.CreateTemp("", "stoke-artifact-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	digest, err := pack(f.Cwd, skip, tmp)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", f.Name, err)
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return nil, err
	}
	d := &Definition{Function: f, Fingerprint: f.Fingerprint(), Version: 1, Node: n.name, Deployed: time.Now().UTC(), Digest: digest}
	for k := range f.SecretEnv {
		d.SecretEnv = append(d.SecretEnv, k)
	}
	if prev != nil {
		d.Version, d.rev = prev.Version+1, prev.rev
	}
	// Named by its publisher too: two nodes deploying the same function
	// at once must not overwrite (or discard) each other's object.
	d.Artifact = fmt.Sprintf("%s/%s/%s-%s", f.Name, d.Fingerprint, n.name, digest[:16])
	if _, err := n.objects.Put(ctx, jetstream.ObjectMeta{Name: d.Artifact, Description: "function " + f.Name}, tmp); err != nil {
		return nil, fmt.Errorf("cluster: storing the files of %s: %w", f.Name, err)
	}
	return d, nil
}

// Commit stores d if the function is still as Publish saw it, which makes
// every node run it. If another node stored the same fingerprint first
// (nodes booting the same file), that is the same version: adopted is
// true and d is not stored. Any other change meanwhile is ErrConflict.
func (n *Node) Commit(ctx context.Context, d *Definition) (adopted bool, err error) {
	err = n.commit(ctx, d)
	if !errors.Is(err, ErrConflict) {
		return false, err
	}
	e, gerr := n.kvFns.Get(ctx, fnKey(d.Function.Name))
	if gerr == nil {
		if cur, derr := decodeDefinition(e); derr == nil && cur.Fingerprint == d.Fingerprint && cur.Version == d.Version {
			return true, nil
		}
	}
	return false, err
}

func (n *Node) commit(ctx context.Context, d *Definition) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	var rev uint64
	if d.rev == 0 {
		rev, err = n.kvFns.Create(ctx, fnKey(d.Function.Name), b)
	} else {
		rev, err = n.kvFns.Update(ctx, fnKey(d.Function.Name), b, d.rev)
	}
	if err == nil {
		n.sawFns(rev)
	}
	if isWrongRevision(err) {
		return fmt.Errorf("function %s: %w", d.Function.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("cluster: storing function %s: %w", d.Function.Name, err)
	}
	return nil
}

// Discard deletes a published artifact that will not be committed.
func (n *Node) Discard(ctx context.Context, d *Definition) {
	if err := n.objects.Delete(ctx, d.Artifact); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		n.log.Warn("cluster: deleting an unused artifact", "artifact", d.Artifact, "err", err)
	}
}

// Remove deletes function name's definition if it is still at d's
// revision: every node drains it.
func (n *Node) Remove(ctx context.Context, d *Definition) error {
	err := n.kvFns.Delete(ctx, fnKey(d.Function.Name), jetstream.LastRevision(d.rev))
	if isWrongRevision(err) {
		return fmt.Errorf("function %s: %w", d.Function.Name, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("cluster: removing function %s: %w", d.Function.Name, err)
	}
	return nil
}

func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	// Replicated streams answer a compare-and-swap conflict with 10164,
	// a single replica with 10071.
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		(errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant))
}

// Fetch makes sure d's files are unpacked on this node and returns d's
// function as this node runs it: cwd, and every path inside it, moved to
// the unpacked copy under cluster.artifacts.
func (n *Node) Fetch(ctx context.Context, d *Definition) (*config.Function, error) {
	dir := filepath.Join(n.cfg.Artifacts, d.Function.Name, d.Fingerprint+"-"+d.Digest[:16])
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		// Reads are served by any replica, which may not have all of the
		// object yet right after it was stored: a missing or torn object
		// is read again, briefly.
		err := retry(ctx, func() error {
			err := n.fetch(ctx, d, dir)
			if errors.Is(err, jetstream.ErrObjectNotFound) {
				return fetchAgain{err} // not there yet, not gone
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: fetching the files of %s version %d: %w", d.Function.Name, d.Version, err)
		}
	}
	return relocate(d.Function, dir), nil
}

func (n *Node) fetch(ctx context.Context, d *Definition, dir string) error {
	obj, err := n.objects.Get(ctx, d.Artifact)
	if err != nil {
		return err
	}
	defer obj.Close()
	return unpack(obj, dir)
}

// fetchAgain marks an object not found as worth asking for again.
type fetchAgain struct{ error }

func (f fetchAgain) Unwrap() error { return nil }

// relocate returns a copy of f whose cwd is dir, with the paths that were
// inside the old cwd moved along.
func relocate(f *config.Function, dir string) *config.Function {
	g := *f
	move := func(p string) string {
		if p == f.Cwd {
			return dir
		}
		if rest, ok := strings.CutPrefix(p, f.Cwd+"/"); ok {
			return filepath.Join(dir, rest)
		}
		return p
	}
	g.Cwd = dir
	g.Command = append([]string(nil), f.Command...)
	if len(g.Command) > 0 {
		g.Command[0] = move(g.Command[0])
	}
	g.Writable = nil
	for _, w := range f.Writable {
		g.Writable = append(g.Writable, move(w))
	}
	g.Python.Interpreter = move(f.Python.Interpreter)
	return &g
}

// FunctionsChanged is signalled after any function definition changes.
func (n *Node) FunctionsChanged() <-chan struct{} { return n.fnChanged }

// watchFunctions signals fnChanged on every change after the initial
// values.
func (n *Node) watchFunctions() error {
	w, err := n.kvFns.WatchAll(n.ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("cluster: watching functions: %w", err)
	}
	n.wg.Go(func() {
		defer w.Stop()
		for e := range w.Updates() {
			if e != nil {
				n.sawFns(e.Revision())
			}
			select {
			case n.fnChanged <- struct{}{}:
			default:
			}
		}
	})
	return nil
}

// PruneArtifacts removes unpacked artifacts this node no longer runs.
func (n *Node) PruneArtifacts(keep map[string]bool) {
	fns, _ := os.ReadDir(n.cfg.Artifacts)
	for _, fe := range fns {
		vers, _ := os.ReadDir(filepath.Join(n.cfg.Artifacts, fe.Name()))
		for _, ve := range vers {
			p := filepath.Join(n.cfg.Artifacts, fe.Name(), ve.Name())
			if !keep[p] {
				_ = os.RemoveAll(p)
			}
		}
	}
}
