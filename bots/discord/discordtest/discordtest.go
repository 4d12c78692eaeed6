// Package discordtest is a fake Discord for tests: the REST routes the bot uses, the
// CDN that serves attachments, and a gateway websocket that speaks Discord's protocol
// (Hello, Identify, Ready, heartbeats, numbered dispatches, Resume, op 7 Reconnect and
// the 4014 close). The real discordgo client runs against it, reaching it through an
// HTTP transport and a websocket dialer that send discord.com, the gateway and the CDN
// hosts to the fake's address.
package discordtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// GatewayURL is what the fake's GET /gateway hands out: Discord's real gateway, so that
// a test proves the client's dialer sends it to the fake and not out to the network.
const GatewayURL = "wss://gateway.discord.gg"

// CDN hosts that serve attachments, as Discord names them in attachment URLs.
const (
	CDNHost   = "cdn.discordapp.com"
	MediaHost = "media.discordapp.net"
)

// InteractionDeadline is how long Discord waits for the first response to an
// interaction before the token stops working (error 10062 "Unknown interaction").
const InteractionDeadline = 3 * time.Second

// Options configures a fake.
type Options struct {
	// Token is the bot token the fake accepts, without the "Bot " prefix.
	Token string
	// AppID is the application (and bot user) id.
	AppID string
	// HeartbeatInterval is sent in Hello; 41.25 s (Discord's usual value) when zero.
	HeartbeatInterval time.Duration
}

// Sent is a message the bot posted.
type Sent struct {
	ChannelID string
	ID        string
	Content   string
	// Reference is the message replied to, if any.
	Reference *discordgo.MessageReference
	// NoMentions is true when allowed_mentions was {"parse": []} with no users or roles
	// and replied_user false: nobody is pinged.
	NoMentions bool
}

// Reaction is a reaction the bot added.
type Reaction struct {
	ChannelID string
	MessageID string
	Emoji     string
}

// Callback is a first response to an interaction.
type Callback struct {
	InteractionID string
	Type          discordgo.InteractionResponseType
	Content       string
}

// Followup is a message sent after a (deferred) interaction response.
type Followup struct {
	InteractionID string
	Content       string
	NoMentions    bool
}

// Identify is what the client sent in op 2.
type Identify struct {
	Token   string
	Intents discordgo.Intent
}

type file struct {
	body        []byte
	contentType string
}

type interaction struct {
	id        string
	created   time.Time
	responded bool
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL every Discord host is rewritten to.
	URL string

	t   testing.TB
	opt Options
	srv *httptest.Server

	mu           sync.Mutex
	changed      chan struct{}
	nextID       int64
	files        map[string]file // by URL path
	downloads    map[string]int  // by URL path
	channels     map[string]*discordgo.Channel
	interactions map[string]*interaction // by token
	sent         []Sent
	msgs         map[string]*discordgo.Message // every message, for referenced_message
	reactions    []Reaction
	callbacks    []Callback
	followups    []Followup
	commands     []*discordgo.ApplicationCommand
	identifies   []Identify
	resumes      int
	heartbeats   int
	denyContent  bool
	failGateway  int
	gw           gateway
}

// New starts a fake Discord and stops it when the test ends.
func New(t testing.TB, opt Options) *Server {
	t.Helper()
	if opt.Token == "" {
		opt.Token = "test-token"
	}
	if opt.AppID == "" {
		opt.AppID = "100000000000000001"
	}
	if opt.HeartbeatInterval == 0 {
		opt.HeartbeatInterval = 41250 * time.Millisecond
	}
	s := &Server{
		t:            t,
		opt:          opt,
		changed:      make(chan struct{}),
		nextID:       200000000000000000,
		files:        map[string]file{},
		downloads:    map[string]int{},
		channels:     map[string]*discordgo.Channel{},
		interactions: map[string]*interaction{},
		msgs:         map[string]*discordgo.Message{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveGateway)
	// Like Discord's, GET /gateway needs no token (GET /gateway/bot does).
	mux.HandleFunc("GET /api/v9/gateway", s.getGateway)
	mux.HandleFunc("GET /api/v9/channels/{channel}", s.api(s.getChannel))
	mux.HandleFunc("POST /api/v9/channels/{channel}/messages", s.api(s.postMessage))
	mux.HandleFunc("PUT /api/v9/channels/{channel}/messages/{message}/reactions/{emoji}/@me", s.api(s.putReaction))
	mux.HandleFunc("PUT /api/v9/applications/{app}/commands", s.api(s.putCommands))
	mux.HandleFunc("POST /api/v9/interactions/{id}/{token}/callback", s.postCallback)
	mux.HandleFunc("POST /api/v9/webhooks/{app}/{token}", s.postFollowup)
	mux.HandleFunc("GET /attachments/", s.getAttachment)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close drops the gateway connection and stops the server.
func (s *Server) Close() {
	s.Drop()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Token is the bot token the fake accepts.
func (s *Server) Token() string { return s.opt.Token }

// AppID is the application id, which is also the bot's user id.
func (s *Server) AppID() string { return s.opt.AppID }

// DenyMessageContent makes the next Identify that asks for the privileged Message
// Content intent fail with close code 4014, as when the intent is not enabled in the
// developer portal.
func (s *Server) DenyMessageContent() {
	s.mu.Lock()
	s.denyContent = true
	s.mu.Unlock()
}

// NewID returns a fresh snowflake.
func (s *Server) NewID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newIDLocked()
}

func (s *Server) newIDLocked() string {
	s.nextID++
	return strconv.FormatInt(s.nextID, 10)
}

// AddThread makes a thread channel under parent known to GET /channels/{id}.
func (s *Server) AddThread(guildID, parentID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newIDLocked()
	s.channels[id] = &discordgo.Channel{ID: id, GuildID: guildID, ParentID: parentID, Type: discordgo.ChannelTypeGuildPublicThread, Name: "thread " + id}
	return id
}

// AddChannel makes a text channel known to GET /channels/{id}.
func (s *Server) AddChannel(guildID, channelID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[channelID] = &discordgo.Channel{ID: channelID, GuildID: guildID, Type: discordgo.ChannelTypeGuildText, Name: "channel " + channelID}
}

// AddFile puts body on the CDN and returns the attachment that describes it, with a
// signed, expiring URL on cdn.discordapp.com and a proxy URL on media.discordapp.net.
func (s *Server) AddFile(channelID, filename, contentType string, body []byte) *discordgo.MessageAttachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newIDLocked()
	path := "/attachments/" + channelID + "/" + id + "/" + url.PathEscape(filename)
	s.files[path] = file{body: body, contentType: contentType}
	// Discord signs attachment URLs: ex (expiry), is (issued), hm (signature), all hex.
	sig := fmt.Sprintf("?ex=%x&is=%x&hm=%064x&", time.Now().Add(24*time.Hour).Unix(), time.Now().Unix(), s.nextID)
	return &discordgo.MessageAttachment{
		ID:          id,
		Filename:    filename,
		ContentType: contentType,
		Size:        len(body),
		URL:         "https://" + CDNHost + path + sig,
		ProxyURL:    "https://" + MediaHost + path + sig,
	}
}

// Downloads says how often the CDN served the file of attachment a.
func (s *Server) Downloads(a *discordgo.MessageAttachment) int {
	u, err := url.Parse(a.URL)
	if err != nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads[u.EscapedPath()]
}

// Sent returns the messages the bot posted, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Reactions returns the reactions the bot added, in order.
func (s *Server) Reactions() []Reaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reaction(nil), s.reactions...)
}

// Callbacks returns the first responses to interactions, in order.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Callback(nil), s.callbacks...)
}

// Followups returns the followup messages, in order.
func (s *Server) Followups() []Followup {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Followup(nil), s.followups...)
}

// Commands returns the application commands last registered.
func (s *Server) Commands() []*discordgo.ApplicationCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*discordgo.ApplicationCommand(nil), s.commands...)
}

// Identifies returns every Identify the gateway received.
func (s *Server) Identifies() []Identify {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Identify(nil), s.identifies...)
}

// Heartbeats says how many heartbeats the gateway acknowledged.
func (s *Server) Heartbeats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heartbeats
}

// Resumes says how many sessions were resumed.
func (s *Server) Resumes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumes
}

// Wait blocks until cond holds, failing the test if it does not within a minute (a
// guard against a hung test, not a measure of speed). cond runs without the lock held
// and may call the accessors.
func (s *Server) Wait(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.After(time.Minute)
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			s.t.Fatalf("discordtest: gave up waiting for %s", what)
		}
	}
}

// changedLocked wakes every Wait.
func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// api checks the bot token on a REST route, as Discord does (401 otherwise).
func (s *Server) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bot "+s.opt.Token {
			writeError(w, http.StatusUnauthorized, 0, "401: Unauthorized")
			return
		}
		h(w, r)
	}
}

func (s *Server) getGateway(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	fail := s.failGateway > 0
	if fail {
		s.failGateway--
	}
	s.mu.Unlock()
	if fail {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": GatewayURL})
}

// FailGateway makes the next n requests for the gateway URL fail with 503, as during
// a Discord outage.
func (s *Server) FailGateway(n int) {
	s.mu.Lock()
	s.failGateway = n
	s.mu.Unlock()
}

func (s *Server) getChannel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ch, ok := s.channels[r.PathValue("channel")]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, 10003, "Unknown Channel")
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

// allowedMentions is the wire form, kept raw so that "parse": null and "parse": [] differ.
type allowedMentions struct {
	Parse       *[]string `json:"parse"`
	Users       []string  `json:"users"`
	Roles       []string  `json:"roles"`
	RepliedUser bool      `json:"replied_user"`
}

func (a *allowedMentions) none() bool {
	return a != nil && a.Parse != nil && len(*a.Parse) == 0 && len(a.Users) == 0 && len(a.Roles) == 0 && !a.RepliedUser
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Content          string                      `json:"content"`
		MessageReference *discordgo.MessageReference `json:"message_reference"`
		AllowedMentions  *allowedMentions            `json:"allowed_mentions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return
	}
	if body.Content == "" {
		writeError(w, http.StatusBadRequest, 50006, "Cannot send an empty message")
		return
	}
	ch := r.PathValue("channel")
	s.mu.Lock()
	m := Sent{ChannelID: ch, ID: s.newIDLocked(), Content: body.Content, Reference: body.MessageReference, NoMentions: body.AllowedMentions.none()}
	s.sent = append(s.sent, m)
	msg := &discordgo.Message{
		ID: m.ID, ChannelID: ch, Content: m.Content, MessageReference: m.Reference,
		Author:    &discordgo.User{ID: s.opt.AppID, Username: "casebook", Bot: true},
		Timestamp: time.Now(), Type: discordgo.MessageTypeDefault,
	}
	if m.Reference != nil {
		msg.Type = discordgo.MessageTypeReply
	}
	s.msgs[m.ID] = msg
	s.changedLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, msg)
}

func (s *Server) putReaction(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reactions = append(s.reactions, Reaction{ChannelID: r.PathValue("channel"), MessageID: r.PathValue("message"), Emoji: r.PathValue("emoji")})
	s.changedLocked()
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) putCommands(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("app") != s.opt.AppID {
		writeError(w, http.StatusForbidden, 50001, "Missing Access")
		return
	}
	var cmds []*discordgo.ApplicationCommand
	if err := json.NewDecoder(r.Body).Decode(&cmds); err != nil {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return
	}
	s.mu.Lock()
	for _, c := range cmds {
		c.ID = s.newIDLocked()
		c.ApplicationID = s.opt.AppID
	}
	s.commands = cmds
	s.changedLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, cmds)
}

// postCallback answers an interaction. Discord refuses a first response after three
// seconds or a second one at any time.
func (s *Server) postCallback(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Type discordgo.InteractionResponseType `json:"type"`
		Data *struct {
			Content string `json:"content"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[r.PathValue("token")]
	switch {
	case !ok || in.id != r.PathValue("id") || time.Since(in.created) > InteractionDeadline:
		writeError(w, http.StatusNotFound, 10062, "Unknown interaction")
		return
	case in.responded:
		writeError(w, http.StatusBadRequest, 40060, "Interaction has already been acknowledged.")
		return
	}
	in.responded = true
	c := Callback{InteractionID: in.id, Type: body.Type}
	if body.Data != nil {
		c.Content = body.Data.Content
	}
	s.callbacks = append(s.callbacks, c)
	s.changedLocked()
	w.WriteHeader(http.StatusNoContent)
}

// postFollowup is the interaction webhook: it works only for an acknowledged interaction.
func (s *Server) postFollowup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Content         string           `json:"content"`
		AllowedMentions *allowedMentions `json:"allowed_mentions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, 50035, "Invalid Form Body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.interactions[r.PathValue("token")]
	if r.PathValue("app") != s.opt.AppID || !ok || !in.responded {
		writeError(w, http.StatusNotFound, 10015, "Unknown Webhook")
		return
	}
	s.followups = append(s.followups, Followup{InteractionID: in.id, Content: body.Content, NoMentions: body.AllowedMentions.none()})
	s.changedLocked()
	writeJSON(w, http.StatusOK, &discordgo.Message{ID: s.newIDLocked(), Content: body.Content, Timestamp: time.Now()})
}

// getAttachment is the CDN. It serves only requests addressed to a CDN host and
// carrying no Authorization header: the bot token has no business there.
func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	if host != CDNHost && host != MediaHost {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "credentials sent to the CDN", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	if q.Get("ex") == "" || q.Get("is") == "" || q.Get("hm") == "" {
		// Unsigned attachment URLs stopped working in 2024.
		http.Error(w, "This content is no longer available.", http.StatusNotFound)
		return
	}
	s.mu.Lock()
	f, ok := s.files[r.URL.EscapedPath()]
	if ok {
		s.downloads[r.URL.EscapedPath()]++
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
	w.Write(f.body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers in Discord's error shape: {"code": 10003, "message": "…"}.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg})
}
