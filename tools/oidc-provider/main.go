// Command berth-oidc-provider is a real OpenID provider for Berth's tests and
// local development: the example OpenID provider of github.com/zitadel/oidc
// (authorization code with PKCE, discovery, JWKS, userinfo, its HTML login
// form) with its clients and users read from a JSON file instead of being
// hard-coded, and a "groups" claim per user.
//
//	berth-oidc-provider -config provider.json -listen 127.0.0.1:9998 -issuer http://127.0.0.1:9998/
//
// The file:
//
//	{"clients": [{"id": "berth", "secret": "s3cret",
//	              "redirectURIGlobs": ["http://127.0.0.1:*/api/v1/auth/oidc/callback"]}],
//	 "users": [{"id": "ada", "username": "ada", "password": "pw", "email": "ada@example.com",
//	            "emailVerified": true, "firstName": "Ada", "lastName": "Lovelace",
//	            "groups": ["developers"]}]}
//
// Usernames log in at the provider's form; "id" becomes the subject (sub).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

type clientConfig struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	// Exact redirect URIs, and path.Match globs (a test server's random port).
	RedirectURIs     []string `json:"redirectURIs"`
	RedirectURIGlobs []string `json:"redirectURIGlobs"`
}

type userConfig struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Password      string   `json:"password"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"emailVerified"`
	FirstName     string   `json:"firstName"`
	LastName      string   `json:"lastName"`
	Groups        []string `json:"groups"`
}

type config struct {
	Clients []clientConfig `json:"clients"`
	Users   []userConfig   `json:"users"`
}

// userStore serves the configured users to the example storage.
type userStore struct {
	byID map[string]*storage.User
}

func (u userStore) GetUserByID(id string) *storage.User { return u.byID[id] }

func (u userStore) GetUserByUsername(username string) *storage.User {
	for _, user := range u.byID {
		if user.Username == username {
			return user
		}
	}
	return nil
}

// ExampleClientID names the example's JWT-profile service user, unused here.
func (u userStore) ExampleClientID() string { return storage.ServiceUserID }

// globClient lets a configured client accept redirect URIs by glob.
type globClient struct {
	*storage.Client
	globs []string
}

func (c globClient) RedirectURIGlobs() []string           { return c.globs }
func (c globClient) PostLogoutRedirectURIGlobs() []string { return nil }

// groupStorage is the example storage plus each user's groups claim, in the
// ID token and at the userinfo endpoint, and the configured redirect globs.
type groupStorage struct {
	*storage.Storage
	groups  map[string][]string
	clients map[string]globClient
}

func (s *groupStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	client, ok := s.clients[clientID]
	if !ok {
		return nil, fmt.Errorf("client not found")
	}
	return client, nil
}

func (s *groupStorage) addGroups(userinfo *oidc.UserInfo, subject string) {
	if groups, ok := s.groups[subject]; ok {
		userinfo.AppendClaims("groups", groups)
	}
}

func (s *groupStorage) SetUserinfoFromRequest(ctx context.Context, userinfo *oidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, userinfo, token, scopes); err != nil {
		return err
	}
	s.addGroups(userinfo, token.GetSubject())
	return nil
}

func (s *groupStorage) SetUserinfoFromToken(ctx context.Context, userinfo *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, userinfo, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(userinfo, userinfo.Subject)
	return nil
}

func main() {
	configPath := flag.String("config", "", "JSON file of clients and users")
	listen := flag.String("listen", "127.0.0.1:9998", "address to listen on")
	issuer := flag.String("issuer", "", "issuer URL (default http://<listen>/)")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if *issuer == "" {
		*issuer = "http://" + *listen + "/"
	}
	data, err := os.ReadFile(*configPath)
	if err != nil {
		logger.Error("cannot read the configuration", "error", err)
		os.Exit(1)
	}
	var cfg config
	if err := json.Unmarshal(data, &cfg); err != nil {
		logger.Error("cannot parse the configuration", "file", *configPath, "error", err)
		os.Exit(1)
	}

	users := userStore{byID: map[string]*storage.User{}}
	groups := map[string][]string{}
	for _, u := range cfg.Users {
		users.byID[u.ID] = &storage.User{
			ID: u.ID, Username: u.Username, Password: u.Password,
			FirstName: u.FirstName, LastName: u.LastName,
			Email: u.Email, EmailVerified: u.EmailVerified,
			PreferredLanguage: language.English,
		}
		groups[u.ID] = u.Groups
	}
	plain := map[string]*storage.Client{}
	clients := map[string]globClient{}
	for _, c := range cfg.Clients {
		client := storage.WebClient(c.ID, c.Secret, c.RedirectURIs...)
		plain[c.ID] = client
		clients[c.ID] = globClient{Client: client, globs: c.RedirectURIGlobs}
	}
	store := &groupStorage{
		Storage: storage.NewStorageWithClients(users, plain),
		groups:  groups,
		clients: clients,
	}
	router := exampleop.SetupServer(*issuer, store, logger, false)
	logger.Info("listening", "issuer", *issuer, "address", *listen)
	if err := http.ListenAndServe(*listen, router); err != nil {
		logger.Error("server stopped", "error", err)
		os.Exit(1)
	}
}
