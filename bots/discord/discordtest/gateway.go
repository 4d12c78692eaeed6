package discordtest

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
)

// Gateway opcodes and close codes, from Discord's "Opcodes and Status Codes" page.
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opReconnect      = 7
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatACK   = 11

	closeAuthenticationFailed = 4004
	closeDisallowedIntents    = 4014
)

// privileged are the intents an application must switch on in the developer portal.
const privileged = discordgo.IntentGuildMembers | discordgo.IntentGuildPresences | discordgo.IntentMessageContent

type frame struct {
	Op  int             `json:"op"`
	D   json.RawMessage `json:"d"`
	S   *int64          `json:"s,omitempty"`
	T   string          `json:"t,omitempty"`
	seq int64
}

// gateway is the one session the fake knows: Discord keeps a session's dispatches so
// that a client that resumes with its last sequence number gets what it missed.
type gateway struct {
	sessionID string
	log       []frame
	conn      *gwConn // the connection dispatches go to; nil while the client is away
}

type gwConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (c *gwConn) write(f frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteJSON(f)
}

func (c *gwConn) closeWith(code int, reason string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	c.ws.Close()
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveGateway runs one gateway connection: Hello, then Identify (a new session) or
// Resume (replay what the client missed), then heartbeats until either side leaves.
func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") != "9" || r.URL.Query().Get("encoding") != "json" {
		http.Error(w, "unsupported gateway version or encoding", http.StatusBadRequest)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &gwConn{ws: ws}
	defer func() {
		s.mu.Lock()
		if s.gw.conn == c {
			s.gw.conn = nil
		}
		s.mu.Unlock()
		ws.Close()
	}()
	hello := map[string]int64{"heartbeat_interval": s.opt.HeartbeatInterval.Milliseconds()}
	if c.write(frame{Op: opHello, D: mustJSON(hello)}) != nil {
		return
	}
	for {
		var in frame
		if err := ws.ReadJSON(&in); err != nil {
			return
		}
		switch in.Op {
		case opHeartbeat:
			s.mu.Lock()
			s.heartbeats++
			s.changedLocked()
			s.mu.Unlock()
			if c.write(frame{Op: opHeartbeatACK, D: json.RawMessage("null")}) != nil {
				return
			}
		case opIdentify:
			if !s.identify(c, in.D) {
				return
			}
		case opResume:
			if !s.resume(c, in.D) {
				return
			}
		}
	}
}

func (s *Server) identify(c *gwConn, d json.RawMessage) bool {
	var id struct {
		Token   string           `json:"token"`
		Intents discordgo.Intent `json:"intents"`
	}
	if err := json.Unmarshal(d, &id); err != nil {
		c.closeWith(4002, "Error while decoding payload.")
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identifies = append(s.identifies, Identify{Token: id.Token, Intents: id.Intents})
	s.changedLocked()
	if id.Token != "Bot "+s.opt.Token {
		c.closeWith(closeAuthenticationFailed, "Authentication failed.")
		return false
	}
	denied := privileged &^ discordgo.IntentMessageContent
	if s.denyContent {
		denied = privileged
	}
	if id.Intents&denied != 0 {
		c.closeWith(closeDisallowedIntents, "Disallowed intent(s).")
		return false
	}
	s.gw = gateway{sessionID: "session-" + s.newIDLocked()}
	ready := map[string]any{
		"v":          9,
		"session_id": s.gw.sessionID,
		"user":       map[string]any{"id": s.opt.AppID, "username": "casebook", "discriminator": "0", "bot": true},
		"guilds":     []any{},
		"application": map[string]any{
			"id": s.opt.AppID, "flags": 0,
		},
		"resume_gateway_url": GatewayURL,
	}
	if !s.dispatchLocked(c, "READY", mustJSON(ready)) {
		return false
	}
	s.gw.conn = c
	return true
}

// resume replays every dispatch after the client's sequence number, then RESUMED.
// An unknown session gets op 9 (not resumable), after which the client identifies.
func (s *Server) resume(c *gwConn, d json.RawMessage) bool {
	var rs struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	if err := json.Unmarshal(d, &rs); err != nil {
		c.closeWith(4002, "Error while decoding payload.")
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs.Token != "Bot "+s.opt.Token {
		c.closeWith(closeAuthenticationFailed, "Authentication failed.")
		return false
	}
	if rs.SessionID != s.gw.sessionID || s.gw.sessionID == "" {
		return c.write(frame{Op: opInvalidSession, D: json.RawMessage("false")}) == nil
	}
	s.resumes++
	s.changedLocked()
	for _, f := range s.gw.log {
		if f.seq > rs.Seq && c.write(f) != nil {
			return false
		}
	}
	last := int64(len(s.gw.log))
	if c.write(frame{Op: opDispatch, T: "RESUMED", S: &last, D: json.RawMessage("{}")}) != nil {
		return false
	}
	s.gw.conn = c
	return true
}

// dispatchLocked numbers a dispatch, keeps it for resumes, and sends it on c if c is
// not nil.
func (s *Server) dispatchLocked(c *gwConn, t string, d json.RawMessage) bool {
	seq := int64(len(s.gw.log) + 1)
	f := frame{Op: opDispatch, T: t, D: d, S: &seq, seq: seq}
	s.gw.log = append(s.gw.log, f)
	if c == nil {
		return true
	}
	if err := c.write(f); err != nil {
		// The client will get it when it resumes.
		return false
	}
	return true
}

// Dispatch sends an event with the next sequence number, or keeps it for the resume if
// the client is away. It fails the test when no session was ever identified.
func (s *Server) Dispatch(eventType string, data any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gw.sessionID == "" {
		s.t.Errorf("discordtest: dispatch %s before any session", eventType)
		return
	}
	if !s.dispatchLocked(s.gw.conn, eventType, mustJSON(data)) {
		s.gw.conn.ws.Close()
		s.gw.conn = nil
	}
}

// Replay sends the last n dispatches again with their original sequence numbers, as
// Discord may after a resume: the client must not act on them twice.
func (s *Server) Replay(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gw.conn == nil {
		return
	}
	for _, f := range s.gw.log[max(0, len(s.gw.log)-n):] {
		if f.T == "READY" {
			continue
		}
		if s.gw.conn.write(f) != nil {
			return
		}
	}
}

// Ready waits until a client has a live session.
func (s *Server) Ready() {
	s.t.Helper()
	s.Wait("a gateway session", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.gw.conn != nil
	})
}

// Drop cuts the gateway connection without a close frame, as a network failure does.
// Later dispatches wait for the client to resume.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gw.conn != nil {
		s.gw.conn.ws.UnderlyingConn().Close()
		s.gw.conn = nil
	}
}

// Reconnect sends op 7: Discord asks the client to reconnect and resume.
func (s *Server) Reconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gw.conn != nil {
		s.gw.conn.write(frame{Op: opReconnect, D: json.RawMessage("null")})
		s.gw.conn = nil
	}
}

// Message is what PostMessage needs to make a MESSAGE_CREATE.
type Message struct {
	GuildID   string
	ChannelID string
	// AuthorID is the poster; Bot marks a bot account.
	AuthorID    string
	AuthorName  string
	Bot         bool
	Content     string
	Attachments []*discordgo.MessageAttachment
	// ReplyTo is the id of the message this one answers.
	ReplyTo string
}

// PostMessage dispatches MESSAGE_CREATE for m and returns the message id.
func (s *Server) PostMessage(m Message) string {
	id := s.NewID()
	msg := &discordgo.Message{
		ID:          id,
		ChannelID:   m.ChannelID,
		GuildID:     m.GuildID,
		Content:     m.Content,
		Timestamp:   time.Now(),
		Author:      &discordgo.User{ID: m.AuthorID, Username: m.AuthorName, Bot: m.Bot},
		Attachments: m.Attachments,
		Type:        discordgo.MessageTypeDefault,
	}
	if msg.Attachments == nil {
		msg.Attachments = []*discordgo.MessageAttachment{}
	}
	s.mu.Lock()
	if m.ReplyTo != "" {
		msg.Type = discordgo.MessageTypeReply
		msg.MessageReference = &discordgo.MessageReference{MessageID: m.ReplyTo, ChannelID: m.ChannelID, GuildID: m.GuildID}
		// Discord includes the replied-to message one level deep: its own
		// message_reference, but not its referenced_message.
		if ref, ok := s.msgs[m.ReplyTo]; ok {
			cp := *ref
			cp.ReferencedMessage = nil
			msg.ReferencedMessage = &cp
		}
	}
	s.msgs[id] = msg
	s.mu.Unlock()
	s.Dispatch("MESSAGE_CREATE", msg)
	return id
}

// Interact dispatches INTERACTION_CREATE for a slash command and returns the
// interaction id. Its token accepts a first response for InteractionDeadline.
func (s *Server) Interact(guildID, channelID, userID string, data discordgo.ApplicationCommandInteractionData) string {
	s.mu.Lock()
	id := s.newIDLocked()
	token := "interaction-token-" + id
	s.interactions[token] = &interaction{id: id, created: time.Now()}
	s.mu.Unlock()
	data.ID = s.NewID()
	in := map[string]any{
		"id":             id,
		"application_id": s.opt.AppID,
		"type":           discordgo.InteractionApplicationCommand,
		"data":           data,
		"guild_id":       guildID,
		"channel_id":     channelID,
		"member": map[string]any{
			"user": map[string]any{"id": userID, "username": "user" + userID},
		},
		"token":   token,
		"version": 1,
		"locale":  "en-US",
	}
	s.Dispatch("INTERACTION_CREATE", in)
	return id
}
