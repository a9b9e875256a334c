package sqlstore

import (
	"context"
	"fmt"
	"strings"
)

// secretColumns lists every sealed column with the key columns its
// associated data names, in the order seal and open use them.
var secretColumns = []struct {
	table   string
	key     []string
	columns []string
}{
	{"clients", []string{"id"}, []string{"secret"}},
	{"signing_keys", []string{"id"}, []string{"private_key"}},
	{"provider_tokens", []string{"user_id", "provider"}, []string{"access_token", "refresh_token", "id_token"}},
	{"credentials", []string{"user_id", "server", "name"}, []string{"value"}},
	{"ephemeral", []string{"kind", "id"}, []string{"value"}},
	{"conversations", []string{"user_id", "id"}, []string{"title"}},
	{"messages", []string{"user_id", "conversation_id", "id"}, []string{"content", "tool_calls", "refs"}},
	{"agents", []string{"user_id", "id"}, []string{"definition"}},
}

// RotateSecrets re-seals with the primary key every value another key
// sealed, batch rows at a time (≤ 0: 500), and returns how many values it
// rewrote. Each batch commits on its own and a value is rewritten only if
// it did not change meanwhile, so it is safe to interrupt, to re-run, and to
// run while the store serves. When a run finds nothing left under the old
// keys, it forgets them: from then on Open accepts a key file without them.
// Re-run it until it returns 0 after every replica uses the new key file.
func (s *Store) RotateSecrets(ctx context.Context, batch int) (int, error) {
	if batch <= 0 {
		batch = 500
	}
	primary := s.keys.PrimaryID()
	total, skipped := 0, 0
	for _, t := range secretColumns {
		cols := strings.Join(append(append([]string{}, t.key...), t.columns...), ", ")
		keyList := strings.Join(t.key, ", ")
		var after []any
		for {
			where := ""
			if after != nil {
				where = fmt.Sprintf(" WHERE (%s) > (%s)", keyList, placeholders(1, len(t.key)))
			}
			query := fmt.Sprintf("SELECT %s FROM %s%s ORDER BY %s LIMIT %d", cols, t.table, where, keyList, batch)
			type rewrite struct {
				key      []any
				column   string
				old, new []byte
			}
			var todo []rewrite
			rows := 0
			err := queryAll(ctx, s.db, func(r Rows) error {
				rows++
				key := make([]string, len(t.key))
				values := make([][]byte, len(t.columns))
				dest := make([]any, 0, len(key)+len(values))
				for i := range key {
					dest = append(dest, &key[i])
				}
				for i := range values {
					dest = append(dest, &values[i])
				}
				if err := r.Scan(dest...); err != nil {
					return err
				}
				after = make([]any, len(key))
				for i, k := range key {
					after[i] = k
				}
				for i, v := range values {
					if len(v) == 0 {
						continue
					}
					if id, err := s.keys.KeyID(v); err == nil && id == primary {
						continue
					}
					plain, err := s.open(v, t.table, t.columns[i], key...)
					if err != nil {
						return fmt.Errorf("re-encrypt: %w", err)
					}
					sealed, err := s.seal(plain, t.table, t.columns[i], key...)
					if err != nil {
						return err
					}
					todo = append(todo, rewrite{key: after, column: t.columns[i], old: v, new: sealed})
				}
				return nil
			}, query, after...)
			if err != nil {
				return total, err
			}
			if len(todo) > 0 {
				done := 0
				err = s.db.Tx(ctx, func(q Querier) error {
					done = 0
					for _, w := range todo {
						conds := make([]string, len(t.key))
						for i, k := range t.key {
							conds[i] = fmt.Sprintf("%s = $%d", k, i+3)
						}
						// The value is compared so that a concurrent write wins.
						n, err := q.Exec(ctx, fmt.Sprintf("UPDATE %s SET %s = $1 WHERE %s = $2 AND %s",
							t.table, w.column, w.column, strings.Join(conds, " AND ")),
							append([]any{w.new, w.old}, w.key...)...)
						if err != nil {
							return err
						}
						done += int(n)
					}
					return nil
				})
				if err != nil {
					return total, fmt.Errorf("re-encrypt %s: %w", t.table, err)
				}
				total += done
				skipped += len(todo) - done
			}
			if rows < batch {
				break
			}
		}
	}
	if skipped > 0 {
		return total, nil // values changed under us; the next run checks them
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM key_checks WHERE key_id <> $1`, primary); err != nil {
		return total, fmt.Errorf("forget old keys: %w", err)
	}
	return total, nil
}

func placeholders(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(ps, ", ")
}
