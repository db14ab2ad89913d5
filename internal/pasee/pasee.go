// Package pasee is the domain of Pasee, the identity manager: users named
// after their identity provider ("kisee-alice"), hierarchical groups with
// delegated administration, refresh sessions, the Provider interface that
// protocols implement and the Store interface that databases implement.
// Service ties them together; the HTTP API lives in pasee/api.
package pasee

import (
	"context"
	"errors"
	"time"
)

// User is a Pasee user: the pair (provider, subject) written
// "<provider>-<subject>".
type User struct {
	Name        string
	IsBanned    bool
	CreatedAt   time.Time
	LastLoginAt time.Time // zero if the user never logged in (only named in a group)
}

// Session is a refresh session: one login, and the chain of refresh tokens
// descended from it. Only the newest refresh token (RefreshJTI) is live;
// the one it replaced (PreviousJTI) is tolerated for the reuse grace window
// after RotatedAt, answering with the current pair again.
type Session struct {
	ID          string
	User        string
	IDP         string
	Claims      map[string]any // whitelisted provider claims carried into access tokens
	RefreshJTI  string
	AccessJTI   string
	PreviousJTI string
	IssuedAt    time.Time // of the current pair
	RotatedAt   time.Time // when PreviousJTI was spent; zero before the first rotation
	ExpiresAt   time.Time // of the current refresh token
	RevokedAt   time.Time // zero while the session lives
	CreatedAt   time.Time
}

// RotateOutcome says what became of a refresh token presented to Rotate.
type RotateOutcome int

const (
	// Rotated: the token was the live one; it is spent and Next is live.
	Rotated RotateOutcome = iota + 1
	// Replayed: the token was spent within the grace window; the session
	// is unchanged and its current pair is to be sent again.
	Replayed
	// ReuseDetected: a spent token outside the grace window; the whole
	// session has been revoked.
	ReuseDetected
	// SessionRevoked: the session was already revoked, or has expired.
	SessionRevoked
)

// NextTokens are the ids and times of the pair replacing a refresh token.
type NextTokens struct {
	RefreshJTI string
	AccessJTI  string
	IssuedAt   time.Time
	ExpiresAt  time.Time
}

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	ID     int64
	At     time.Time
	Actor  string // the user who acted, or "cli" / "system"
	Action string // e.g. "group.create", "member.add", "user.ban", "session.revoke"
	Target string // the group, user or session acted on
	Detail string // e.g. the member added
}

// Audit actions.
const (
	ActionGroupCreate   = "group.create"
	ActionGroupDelete   = "group.delete"
	ActionMemberAdd     = "member.add"
	ActionMemberRemove  = "member.remove"
	ActionUserBan       = "user.ban"
	ActionUserUnban     = "user.unban"
	ActionUserDelete    = "user.delete"
	ActionSessionRevoke = "session.revoke"
	ActionSessionReuse  = "session.reuse_detected"
)

// Errors stores return; the API maps them to statuses.
var (
	ErrNotFound       = errors.New("not found")
	ErrGroupExists    = errors.New("group already exists")
	ErrGroupNotFound  = errors.New("group does not exist")
	ErrParentNotFound = errors.New("parent group does not exist")
	ErrAlreadyMember  = errors.New("user already in group")
	ErrNotMember      = errors.New("user does not exist in group")
	ErrUserNotFound   = errors.New("user does not exist")
	ErrUnavailable    = errors.New("store unavailable")
)

// Store keeps users, groups, memberships, sessions and the audit log. Every
// mutating method writes its audit event in the same transaction as the
// change, with actor as the one who acted. Implementation: store/sqlstore,
// on SQLite and PostgreSQL; store/storetest is the conformance suite it
// passes on both.
//
// Errors wrap the sentinels above; a database that cannot be reached
// yields an error wrapping ErrUnavailable.
type Store interface {
	// Groups.

	// CreateGroup creates name and name.staff, and makes creator a member of
	// name.staff. The parent of name must exist (ErrParentNotFound) and name
	// must not (ErrGroupExists). The root group "staff" always exists.
	CreateGroup(ctx context.Context, actor, name, creator string, now time.Time) error
	// EnsureGroup creates name (and the missing ancestors, each with its
	// .staff group) if it does not exist; for the CLI's append.
	EnsureGroup(ctx context.Context, actor, name string, now time.Time) error
	// DeleteGroup deletes name, its subtree and their memberships.
	DeleteGroup(ctx context.Context, actor, name string, now time.Time) error
	GroupExists(ctx context.Context, name string) (bool, error)
	// ListGroups returns group names in byte order after after, at most limit.
	ListGroups(ctx context.Context, after string, limit int) ([]string, error)
	// VisibleGroups returns, in byte order after after and at most limit, the
	// groups user belongs to and every group in the subtree of a group X
	// whose X.staff user belongs to.
	VisibleGroups(ctx context.Context, user, after string, limit int) ([]string, error)

	// Memberships.

	// AddMember adds user to group, creating the user if unknown.
	AddMember(ctx context.Context, actor, group, user string, now time.Time) error
	RemoveMember(ctx context.Context, actor, group, user string, now time.Time) error
	// Members returns the members of group in byte order after after.
	Members(ctx context.Context, group, after string, limit int) ([]string, error)
	// UserGroups returns the groups user belongs to, sorted.
	UserGroups(ctx context.Context, user string) ([]string, error)
	// IsMemberOfAny reports whether user belongs to at least one of groups.
	IsMemberOfAny(ctx context.Context, user string, groups []string) (bool, error)

	// Users.

	// RecordLogin creates user if unknown and sets its last login time.
	RecordLogin(ctx context.Context, user string, now time.Time) (User, error)
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context, after string, limit int) ([]User, error)
	// SetBanned bans or unbans user; banning revokes all its sessions in the
	// same transaction.
	SetBanned(ctx context.Context, actor, user string, banned bool, now time.Time) error
	// DeleteUser removes user, its memberships and its sessions.
	DeleteUser(ctx context.Context, actor, user string, now time.Time) error

	// Sessions.

	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	// CallerStatus reads in one query what every authenticated request
	// checks: whether user is banned and whether its session sid still
	// lives (not revoked; "" skips the session). ErrUserNotFound for an
	// unknown user.
	CallerStatus(ctx context.Context, user, sid string) (banned, sessionLive bool, err error)
	// Rotate spends presentedJTI of session id. See RotateOutcome. The
	// returned session is its state after the call.
	Rotate(ctx context.Context, id, presentedJTI string, next NextTokens, now time.Time, grace time.Duration) (RotateOutcome, Session, error)
	// RotateAndReadGroups is Rotate that also returns the groups of the
	// session's user, sorted, when the outcome is Rotated or Replayed: what
	// a refresh needs, read with the rotation (one round trip in the common
	// case).
	RotateAndReadGroups(ctx context.Context, id, presentedJTI string, next NextTokens, now time.Time, grace time.Duration) (RotateOutcome, Session, []string, error)
	// RevokeSession revokes one session; actor is who asked.
	RevokeSession(ctx context.Context, actor, id string, now time.Time) error
	// RevokeUserSessions revokes every live session of user, without
	// banning it, and returns how many it revoked. It is audited as
	// session.revoke with user as target, even when no session was live
	// (an administrator acted); an unknown user is ErrUserNotFound.
	RevokeUserSessions(ctx context.Context, actor, user string, now time.Time) (int, error)

	// Audit returns audit events newest first, with ids below before
	// (0: from the newest), at most limit.
	Audit(ctx context.Context, before int64, limit int) ([]AuditEvent, error)

	// Ping checks the database is reachable.
	Ping(ctx context.Context) error
	Close() error
}
