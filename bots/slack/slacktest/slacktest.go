// Package slacktest is a fake Slack for tests: the Web API methods casebook's Slack
// bot calls (apps.connections.open, auth.test, files.info, chat.postMessage,
// reactions.add), private file downloads served from the same host, and a Socket Mode
// WebSocket that sends hello and events_api / slash_commands envelopes and reads acks.
// The real slack-go client runs against it through slack.OptionAPIURL(s.APIURL()).
//
// Like Slack, it delivers again every envelope not yet acknowledged when a new socket
// connects, so a test can drop the socket mid-session and see nothing lost.
package slacktest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

// The default identities of the fake workspace.
const (
	BotToken  = "xoxb-test-bot-token"
	AppToken  = "xapp-test-app-token"
	TeamID    = "T0TEST"
	BotUserID = "U0BOT"
	BotID     = "B0BOT"
	AppID     = "A0APP"
)

// BotScopes are the bot scopes casebook needs; the fake grants them unless a test
// calls SetScopes.
var BotScopes = []string{"channels:history", "groups:history", "files:read", "chat:write", "reactions:write", "commands"}

// File is a file the fake serves.
type File struct {
	ID       string
	Name     string
	Mimetype string
	Content  []byte
	// SignIn makes the download redirect to an HTML sign-in page, as Slack does when
	// the token may not read the file.
	SignIn bool
	// CheckFileInfo makes Object leave the URL out and set file_access to
	// check_file_info, as Slack Connect events do: the client must call files.info.
	CheckFileInfo bool
	// External marks a file that lives outside Slack.
	External bool
}

// Post is a chat.postMessage call.
type Post struct {
	Channel  string
	ThreadTS string
	Text     string
	TS       string
}

// Reaction is a reactions.add call.
type Reaction struct {
	Name      string
	Channel   string
	Timestamp string
}

type envelope struct {
	id      string
	typ     string
	payload json.RawMessage
	retries int
}

// pingInterval is how often the socket sends a WebSocket ping; slack-go drops a
// connection that goes 30 s without one.
const pingInterval = 5 * time.Second

// Server is the fake.
type Server struct {
	srv      *httptest.Server
	upgrader websocket.Upgrader

	mu sync.Mutex
	// scopes are the bot token's scopes, reported by auth.test in X-OAuth-Scopes.
	scopes []string
	// appScopes are the app-level token's scopes.
	appScopes   []string
	files       map[string]File
	posts       []Post
	reactions   []Reaction
	envelopes   []*envelope // not yet acknowledged, in order
	acks        map[string]json.RawMessage
	conn        *websocket.Conn
	connWrite   *sync.Mutex
	connections int
	downloads   int
	rateLimit   map[string]int
	loseAcks    int
	nextID      int
	changed     chan struct{} // closed and replaced on every change, for waiters
}

// New starts a fake Slack; it stops when the test ends.
func New() *Server {
	s := &Server{
		scopes:    slices.Clone(BotScopes),
		appScopes: []string{"connections:write"},
		files:     map[string]File{},
		acks:      map[string]json.RawMessage{},
		rateLimit: map[string]int{},
		changed:   make(chan struct{}),
	}
	// slack-go dials with Origin: https://api.slack.com, which gorilla's default
	// same-origin check refuses.
	s.upgrader.CheckOrigin = func(r *http.Request) bool { return r.Header.Get("Origin") == "https://api.slack.com" }
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/apps.connections.open", s.connectionsOpen)
	mux.HandleFunc("POST /api/auth.test", s.authTest)
	mux.HandleFunc("POST /api/files.info", s.filesInfo)
	mux.HandleFunc("POST /api/chat.postMessage", s.postMessage)
	mux.HandleFunc("POST /api/reactions.add", s.reactionsAdd)
	mux.HandleFunc("GET /files-pri/{team}/{id}/{name}", s.download)
	mux.HandleFunc("GET /signin", s.signIn)
	mux.HandleFunc("GET /link/", s.socket)
	s.srv = httptest.NewServer(mux)
	return s
}

// Close stops the server and drops the socket.
func (s *Server) Close() {
	s.DropSocket()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetScopes changes the scopes of the bot token and of the app-level token.
func (s *Server) SetScopes(bot, app []string) {
	s.mu.Lock()
	s.scopes, s.appScopes = slices.Clone(bot), slices.Clone(app)
	s.mu.Unlock()
}

// APIURL is what slack.OptionAPIURL takes.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// AddFile makes f downloadable and returns the file object an event carries.
func (s *Server) AddFile(f File) slack.File {
	if f.Mimetype == "" {
		f.Mimetype = "application/octet-stream"
	}
	s.mu.Lock()
	s.files[f.ID] = f
	s.mu.Unlock()
	return s.object(f, false)
}

func (s *Server) object(f File, info bool) slack.File {
	o := slack.File{ID: f.ID, Name: f.Name, Title: f.Name, Mimetype: f.Mimetype, Size: len(f.Content), IsExternal: f.External, Mode: "hosted", FileAccess: "visible"}
	if f.External {
		o.Mode = "external"
		o.URLPrivate = "https://example.com/" + url.PathEscape(f.Name)
		return o
	}
	if f.CheckFileInfo && !info {
		o.FileAccess = "check_file_info"
		return o
	}
	o.URLPrivate = s.srv.URL + "/files-pri/" + TeamID + "-" + f.ID + "/" + f.ID + "/" + url.PathEscape(f.Name)
	o.URLPrivateDownload = o.URLPrivate + "?download=1"
	return o
}

// MessageEvent is the JSON of a message event as Slack sends it.
type MessageEvent struct {
	Type        string       `json:"type"`
	SubType     string       `json:"subtype,omitempty"`
	Channel     string       `json:"channel"`
	ChannelType string       `json:"channel_type,omitempty"`
	User        string       `json:"user,omitempty"`
	BotID       string       `json:"bot_id,omitempty"`
	Text        string       `json:"text"`
	TS          string       `json:"ts"`
	ThreadTS    string       `json:"thread_ts,omitempty"`
	Files       []slack.File `json:"files,omitempty"`
	Message     any          `json:"message,omitempty"`
	Upload      bool         `json:"upload,omitempty"`
	EventTS     string       `json:"event_ts,omitempty"`
}

// Callback wraps an inner event in an event_callback, as delivered in an events_api
// envelope or posted to an Events API Request URL.
func Callback(eventID string, inner any) []byte {
	b, err := json.Marshal(map[string]any{
		"token":        "legacy-verification-token",
		"team_id":      TeamID,
		"api_app_id":   AppID,
		"type":         "event_callback",
		"event_id":     eventID,
		"event_time":   time.Now().Unix(),
		"event":        inner,
		"authed_users": []string{BotUserID},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// SendEvent delivers an event_callback over the socket in an events_api envelope and
// returns the envelope id. It is kept and delivered again on every new connection
// until it is acknowledged.
func (s *Server) SendEvent(eventID string, inner any) string {
	return s.send("events_api", Callback(eventID, inner))
}

// SendSlashCommand delivers a slash command envelope; the ack carries the answer
// (AckPayload).
func (s *Server) SendSlashCommand(channel, user, command, text string) string {
	b, _ := json.Marshal(slack.SlashCommand{TeamID: TeamID, ChannelID: channel, UserID: user, Command: command, Text: text, APIAppID: AppID})
	return s.send("slash_commands", b)
}

func (s *Server) send(typ string, payload []byte) string {
	s.mu.Lock()
	s.nextID++
	e := &envelope{id: fmt.Sprintf("env-%d", s.nextID), typ: typ, payload: payload}
	s.envelopes = append(s.envelopes, e)
	conn, wmu := s.conn, s.connWrite
	s.mu.Unlock()
	if conn != nil {
		writeEnvelope(conn, wmu, e)
	}
	return e.id
}

func writeEnvelope(conn *websocket.Conn, wmu *sync.Mutex, e *envelope) {
	msg := map[string]any{"type": e.typ, "envelope_id": e.id, "payload": e.payload,
		"accepts_response_payload": e.typ != "events_api", "retry_attempt": e.retries}
	if e.retries > 0 {
		msg["retry_reason"] = "timeout"
	}
	wmu.Lock()
	defer wmu.Unlock()
	// A write to a dropped connection fails; the envelope stays pending for the next.
	_ = conn.WriteJSON(msg)
}

// DropSocket closes the current socket without a close frame, as a network failure
// would. Unacknowledged envelopes are delivered again on the next connection.
func (s *Server) DropSocket() {
	s.mu.Lock()
	conn := s.conn
	s.conn = nil
	s.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	s.notify()
}

// RateLimit makes the next n calls of an API method fail with HTTP 429 and
// Retry-After: 1.
func (s *Server) RateLimit(method string, n int) {
	s.mu.Lock()
	s.rateLimit[method] += n
	s.mu.Unlock()
}

// LoseAcks makes the fake disregard the next n acks, as if they were lost with the
// connection: their envelopes stay pending and are delivered again after a reconnect.
func (s *Server) LoseAcks(n int) {
	s.mu.Lock()
	s.loseAcks += n
	s.mu.Unlock()
}

// Posts returns the messages posted so far.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.posts)
}

// Reactions returns the reactions added so far.
func (s *Server) Reactions() []Reaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reactions)
}

// Acked reports whether an envelope was acknowledged, and the payload of its ack.
func (s *Server) Acked(envelopeID string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.acks[envelopeID]
	return p, ok
}

// Connections counts socket connections so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// Downloads counts file downloads served.
func (s *Server) Downloads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads
}

// Wait blocks until cond holds (checked after every change the fake sees) or ctx ends.
func (s *Server) Wait(ctx context.Context, cond func(s *Server) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slacktest: waiting: %w", ctx.Err())
		}
	}
}

func (s *Server) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Sign returns the headers Slack puts on an Events API request signed with secret at
// time ts (v0 signature: HMAC-SHA256 over "v0:ts:body").
func Sign(secret string, ts time.Time, body []byte) http.Header {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%s:%s", stamp, body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", stamp)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(m.Sum(nil)))
	return h
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code string, extra ...any) {
	m := map[string]any{"ok": false, "error": code}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	writeJSON(w, m)
}

// method checks the token and scope of a Web API call, and applies a rate limit.
func (s *Server) method(w http.ResponseWriter, r *http.Request, name, scope string) bool {
	s.mu.Lock()
	limited := s.rateLimit[name] > 0
	if limited {
		s.rateLimit[name]--
	}
	scopes := s.scopes
	s.mu.Unlock()
	if limited {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "ratelimited", http.StatusTooManyRequests)
		return false
	}
	token := r.FormValue("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if token != BotToken {
		fail(w, "invalid_auth")
		return false
	}
	if scope != "" && !slices.Contains(scopes, scope) {
		fail(w, "missing_scope", "needed", scope, "provided", strings.Join(scopes, ","))
		return false
	}
	return true
}

func (s *Server) connectionsOpen(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+AppToken {
		fail(w, "invalid_auth")
		return
	}
	s.mu.Lock()
	ok := slices.Contains(s.appScopes, "connections:write")
	s.mu.Unlock()
	if !ok {
		fail(w, "missing_scope", "needed", "connections:write")
		return
	}
	writeJSON(w, map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/?ticket=t"})
}

func (s *Server) authTest(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, "auth.test", "") {
		return
	}
	s.mu.Lock()
	w.Header().Set("X-OAuth-Scopes", strings.Join(s.scopes, ","))
	s.mu.Unlock()
	writeJSON(w, map[string]any{"ok": true, "url": "https://casebook-test.slack.com/", "team": "Test", "user": "casebook",
		"team_id": TeamID, "user_id": BotUserID, "bot_id": BotID})
}

func (s *Server) filesInfo(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, "files.info", "files:read") {
		return
	}
	s.mu.Lock()
	f, ok := s.files[r.FormValue("file")]
	s.mu.Unlock()
	if !ok {
		fail(w, "file_not_found")
		return
	}
	writeJSON(w, map[string]any{"ok": true, "file": s.object(f, true), "comments": []any{}, "paging": map[string]int{"count": 0, "total": 0, "page": 1, "pages": 0}})
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, "chat.postMessage", "chat:write") {
		return
	}
	s.mu.Lock()
	s.nextID++
	p := Post{Channel: r.FormValue("channel"), ThreadTS: r.FormValue("thread_ts"), Text: r.FormValue("text"), TS: fmt.Sprintf("1700000000.%06d", s.nextID)}
	s.posts = append(s.posts, p)
	s.mu.Unlock()
	s.notify()
	writeJSON(w, map[string]any{"ok": true, "channel": p.Channel, "ts": p.TS,
		"message": map[string]any{"type": "message", "text": p.Text, "ts": p.TS, "thread_ts": p.ThreadTS, "bot_id": BotID, "user": BotUserID}})
}

func (s *Server) reactionsAdd(w http.ResponseWriter, r *http.Request) {
	if !s.method(w, r, "reactions.add", "reactions:write") {
		return
	}
	s.mu.Lock()
	s.reactions = append(s.reactions, Reaction{Name: r.FormValue("name"), Channel: r.FormValue("channel"), Timestamp: r.FormValue("timestamp")})
	s.mu.Unlock()
	s.notify()
	writeJSON(w, map[string]any{"ok": true})
}

// download serves url_private(_download). Without files:read (or for a file marked
// SignIn) Slack answers with a redirect to the workspace sign-in page, redir naming
// the file's path, and the page is HTML with status 200.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f, ok := s.files[r.PathValue("id")]
	canRead := slices.Contains(s.scopes, "files:read")
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+BotToken || !canRead || f.SignIn {
		http.Redirect(w, r, "/signin?redir="+url.QueryEscape(r.URL.Path), http.StatusFound)
		return
	}
	s.mu.Lock()
	s.downloads++
	s.mu.Unlock()
	w.Header().Set("Content-Type", f.Mimetype)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Content)))
	w.Write(f.Content)
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body>Sign in to your workspace</body></html>")
}

// socket is the Socket Mode WebSocket: hello, then every pending envelope, then new
// ones as they are sent; acks remove envelopes from the pending list.
func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	wmu := &sync.Mutex{}
	s.mu.Lock()
	old := s.conn
	s.conn, s.connWrite = conn, wmu
	s.connections++
	n := s.connections
	pending := slices.Clone(s.envelopes)
	for _, e := range pending {
		e.retries++
	}
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	s.notify()

	wmu.Lock()
	err = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1,
		"connection_info": map[string]string{"app_id": AppID},
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 3600, "build_number": n}})
	wmu.Unlock()
	if err != nil {
		return
	}
	for _, e := range pending {
		writeEnvelope(conn, wmu, e)
	}

	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(pingInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				wmu.Lock()
				err := conn.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second))
				wmu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := conn.ReadJSON(&ack); err != nil {
			s.mu.Lock()
			if s.conn == conn {
				s.conn = nil
			}
			s.mu.Unlock()
			conn.Close()
			s.notify()
			return
		}
		s.mu.Lock()
		if s.loseAcks > 0 {
			s.loseAcks--
			s.mu.Unlock()
			continue
		}
		s.envelopes = slices.DeleteFunc(s.envelopes, func(e *envelope) bool { return e.id == ack.EnvelopeID })
		if ack.Payload == nil {
			ack.Payload = json.RawMessage("null")
		}
		s.acks[ack.EnvelopeID] = ack.Payload
		s.mu.Unlock()
		s.notify()
	}
}
