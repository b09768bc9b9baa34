// Command client is an OpenTelemetry collector stand-in built on opamp-go's own OpAMP client,
// driven by test/e2e/opamp.test.ts: it prints what it receives as JSON lines on stdout and obeys
// commands read from stdin ("stop": say agent_disconnect and exit).
//
// It applies a remote config by "validating" it: a config naming the receiver type `nonexistent`
// fails, as a real collector fails on an unknown component; anything else is applied.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/open-telemetry/opamp-go/client"
	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/open-telemetry/opamp-go/protobufs"
)

var out = json.NewEncoder(os.Stdout)
var outMu sync.Mutex

func emit(event string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["event"] = event
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(fields)
}

type agent struct {
	mu        sync.Mutex
	url       string
	transport string
	poll      time.Duration
	auth      string
	uid       types.InstanceUid
	requestID bool
	compress  bool
	client    client.OpAMPClient
	applied   *protobufs.AgentConfigMap
	status    *protobufs.RemoteConfigStatus
}

func main() {
	a := &agent{}
	var uidText string
	flag.StringVar(&a.url, "url", "", "OpAMP server URL (http:// or ws://)")
	flag.StringVar(&a.transport, "transport", "http", "http or ws")
	flag.StringVar(&a.auth, "auth", "", "Authorization header value")
	flag.StringVar(&uidText, "uid", "", "instance uid (UUID); a new UUIDv7 when empty")
	flag.BoolVar(&a.requestID, "request-uid", false, "set the RequestInstanceUid flag")
	flag.BoolVar(&a.compress, "compress", false, "gzip request bodies (opamp-go's EnableCompression)")
	flag.DurationVar(&a.poll, "poll", 300*time.Millisecond, "HTTP polling / heartbeat interval")
	flag.Parse()
	if uidText == "" {
		a.uid = types.InstanceUid(uuid.Must(uuid.NewV7()))
	} else {
		a.uid = types.InstanceUid(uuid.MustParse(uidText))
	}
	if err := a.start(); err != nil {
		emit("fatal", map[string]any{"error": err.Error()})
		os.Exit(1)
	}
	scanner := bufio.NewScanner(os.Stdin)
	for scanner.Scan() {
		if strings.TrimSpace(scanner.Text()) == "stop" {
			break
		}
	}
	a.stopClient()
	emit("stopped", nil)
}

// stopClient stops the current client, giving it 5 s to say goodbye (agent_disconnect on a socket).
func (a *agent) stopClient() {
	a.mu.Lock()
	c := a.client
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Stop(ctx)
}

func (a *agent) header() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.auth
}

func (a *agent) start() error {
	var c client.OpAMPClient
	if a.transport == "ws" {
		c = client.NewWebSocket(nil)
	} else {
		c = client.NewHTTP(nil)
	}
	if err := c.SetAgentDescription(&protobufs.AgentDescription{
		IdentifyingAttributes: []*protobufs.KeyValue{
			kv("service.name", "otelcol-opamp-test"),
			kv("service.version", "0.9.1"),
		},
		NonIdentifyingAttributes: []*protobufs.KeyValue{
			kv("host.name", "collector-host"),
			kv("os.type", "linux"),
			kv("host.arch", "amd64"),
		},
	}); err != nil {
		return err
	}
	if err := c.SetHealth(&protobufs.ComponentHealth{Healthy: true, Status: "StatusOK", ComponentHealthMap: map[string]*protobufs.ComponentHealth{
		"pipeline:metrics": {Healthy: true, Status: "StatusOK"},
	}}); err != nil {
		return err
	}
	// After the health: opamp-go refuses ReportsHealth without one.
	capabilities := protobufs.AgentCapabilities_AgentCapabilities_ReportsStatus |
		protobufs.AgentCapabilities_AgentCapabilities_AcceptsRemoteConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsEffectiveConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsRemoteConfig |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsHealth |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsHeartbeat |
		protobufs.AgentCapabilities_AgentCapabilities_AcceptsOpAMPConnectionSettings |
		protobufs.AgentCapabilities_AgentCapabilities_AcceptsRestartCommand
	if err := c.SetCapabilities(&capabilities); err != nil {
		return err
	}
	if a.requestID {
		c.SetFlags(protobufs.AgentToServerFlags_AgentToServerFlags_RequestInstanceUid)
	}
	a.mu.Lock()
	a.client = c
	status := a.status
	a.mu.Unlock()
	settings := types.StartSettings{
		OpAMPServerURL:     a.url,
		InstanceUid:        a.uid,
		HeartbeatInterval:  &a.poll,
		RemoteConfigStatus: status,
		EnableCompression:  a.compress,
		HeaderFunc: func(h http.Header) http.Header {
			h.Set("Authorization", a.header())
			return h
		},
		Callbacks: types.Callbacks{
			OnConnect:       func(ctx context.Context) { emit("connected", nil) },
			OnConnectFailed: func(ctx context.Context, err error) { emit("connect_failed", map[string]any{"error": err.Error()}) },
			OnError: func(ctx context.Context, err *protobufs.ServerErrorResponse) {
				emit("server_error", map[string]any{"type": err.Type.String(), "message": err.ErrorMessage})
			},
			OnMessage: a.onMessage,
			OnCommand: func(ctx context.Context, command *protobufs.ServerToAgentCommand) error {
				emit("command", map[string]any{"type": command.Type.String()})
				return nil
			},
			OnOpampConnectionSettings: func(ctx context.Context, settings *protobufs.OpAMPConnectionSettings) error {
				for _, h := range settings.GetHeaders().GetHeaders() {
					if h.Key == "Authorization" {
						a.mu.Lock()
						a.auth = h.Value
						a.mu.Unlock()
						emit("credential", map[string]any{"header": h.Value})
						if a.transport == "ws" {
							// A socket authenticates once: reconnect with the new credential.
							go a.restart()
						}
					}
				}
				return nil
			},
			GetEffectiveConfig: func(ctx context.Context) (*protobufs.EffectiveConfig, error) {
				emit("effective_config_read", nil)
				a.mu.Lock()
				defer a.mu.Unlock()
				if a.applied == nil {
					return &protobufs.EffectiveConfig{ConfigMap: &protobufs.AgentConfigMap{ConfigMap: map[string]*protobufs.AgentConfigFile{
						"local.yaml": {Body: []byte("exporters:\n  otlp:\n    headers:\n      api_key: local-secret\n"), ContentType: "text/yaml"},
					}}}, nil
				}
				return &protobufs.EffectiveConfig{ConfigMap: a.applied}, nil
			},
		},
	}
	if err := c.Start(context.Background(), settings); err != nil {
		return err
	}
	emit("started", map[string]any{"uid": uuid.UUID(a.uid).String()})
	return nil
}

func (a *agent) restart() {
	a.stopClient()
	if err := a.start(); err != nil {
		emit("fatal", map[string]any{"error": err.Error()})
	}
}

func (a *agent) onMessage(ctx context.Context, msg *types.MessageData) {
	if id := msg.AgentIdentification; id != nil {
		uid, err := uuid.FromBytes(id.NewInstanceUid)
		if err == nil {
			a.mu.Lock()
			a.uid = types.InstanceUid(uid)
			a.mu.Unlock()
			emit("new_uid", map[string]any{"uid": uid.String()})
		}
	}
	config := msg.RemoteConfig
	if config == nil {
		return
	}
	bodies := map[string]string{}
	for name, file := range config.GetConfig().GetConfigMap() {
		bodies[name] = string(file.Body)
	}
	emit("remote_config", map[string]any{"hash": string(config.ConfigHash), "files": bodies})
	status := &protobufs.RemoteConfigStatus{LastRemoteConfigHash: config.ConfigHash, Status: protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED}
	for _, body := range bodies {
		if strings.Contains(body, "nonexistent") {
			status.Status = protobufs.RemoteConfigStatuses_RemoteConfigStatuses_FAILED
			status.ErrorMessage = "receivers: unknown type: \"nonexistent\""
		}
	}
	a.mu.Lock()
	c := a.client
	a.status = status
	if status.Status == protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED {
		a.applied = config.Config
	}
	a.mu.Unlock()
	if err := c.SetRemoteConfigStatus(status); err != nil {
		emit("fatal", map[string]any{"error": err.Error()})
	}
	if status.Status == protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED {
		_ = c.UpdateEffectiveConfig(ctx)
	}
	emit(strings.ToLower(strings.TrimPrefix(status.Status.String(), "RemoteConfigStatuses_")), map[string]any{"hash": string(config.ConfigHash)})
}

func kv(key, value string) *protobufs.KeyValue {
	return &protobufs.KeyValue{Key: key, Value: &protobufs.AnyValue{Value: &protobufs.AnyValue_StringValue{StringValue: value}}}
}
