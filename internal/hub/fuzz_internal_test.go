package hub

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// FuzzStdioFraming feeds what a stdio server writes to its stdout to the
// connection the hub reads it with (newline-delimited JSON-RPC, lines of at
// most maxLineBytes). Every message read is one of the input's lines, and
// encodes and decodes back to itself.
func FuzzStdioFraming(f *testing.F) {
	// What go-sdk servers write: an initialize result, a notification, a
	// tools/list result, a server-to-client request.
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"logging":{},"tools":{"listChanged":true}},"protocolVersion":"2025-06-18","serverInfo":{"name":"everything","version":"v0.0.1"}}}` + "\n" +
			`{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{}}` + "\n",
		`{"jsonrpc":"2.0","id":2,"result":{"tools":[{"inputSchema":{"type":"object","properties":{"name":{"type":"string"}}},"name":"greet"}]}}` + "\n",
		`{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[],"maxTokens":10}}` + "\r\n",
		`{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"method not found"}}`,
		"starting server...\n" + `{"jsonrpc":"2.0","id":1,"result":{}}` + "\n",
		`[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"x"}]` + "\n",
		`{"jsonrpc":"1.0","id":1,"result":{}}` + "\n\n\n",
		`{"jsonrpc":"2.0","id":1,"result":{}` + strings.Repeat(" ", 100) + "\n",
		"\x00\xff\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		conn, err := (&mcp.IOTransport{Reader: io.NopCloser(bytes.NewReader(out)), Writer: nopWriteCloser{io.Discard}, MaxLineLength: maxLineBytes}).Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		lines := bytes.Count(out, []byte("\n")) + 1
		n := 0
		for {
			msg, err := conn.Read(context.Background())
			if err != nil {
				break
			}
			n++
			if n > lines*64 { // a line may be a batch; each element costs at least a few bytes
				t.Fatalf("%d messages from %d lines", n, lines)
			}
			if r, ok := msg.(*jsonrpc.Request); ok && r.Method == "" {
				// The SDK reads {"method":""} as a request but omits the
				// empty method when encoding (found by this target; seed
				// in testdata): no round trip to check.
				continue
			}
			b, err := jsonrpc.EncodeMessage(msg)
			if err != nil {
				t.Fatalf("message read cannot be encoded: %v", err)
			}
			back, err := jsonrpc.DecodeMessage(b)
			if err != nil {
				t.Fatalf("re-encoded message %s does not decode: %v", b, err)
			}
			b2, _ := jsonrpc.EncodeMessage(back)
			if !bytes.Equal(b, b2) {
				t.Fatalf("round trip changed %s to %s", b, b2)
			}
		}
	})
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
