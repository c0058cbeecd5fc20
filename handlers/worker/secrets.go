package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/stagehand-dev/stagehand/bot"
)

// SecretsDir is the server's secret source (SPEC §7): one file per value at
// <Dir>/<owner>/<repo>/<environment>/<NAME>, which is how a Kubernetes
// Secret, a Docker secret or a Vault agent presents them. Values never
// travel through GitHub or the repository.
type SecretsDir struct {
	Dir string // "" : no secret source; every declared secret is missing
}

// maxSecretBytes bounds a secret file: a value, not a payload.
const maxSecretBytes = 1 << 20

// ErrSecretMissing is wrapped by Secret when the file does not exist.
var ErrSecretMissing = errors.New("secret missing")

// Path is where the secret name of prog's environment env is looked for.
func (s SecretsDir) Path(prog bot.Program, env bot.EnvironmentName, name string) (string, error) {
	for _, part := range []string{prog.Owner, prog.Repo, string(env)} {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, `/\`) {
			return "", fmt.Errorf("%q cannot name a directory of the secrets directory", part)
		}
	}
	if err := bot.CheckVariableName(name); err != nil {
		return "", err
	}
	return filepath.Join(s.Dir, prog.Owner, prog.Repo, string(env), name), nil
}

// Secret reads one secret's value. A missing file is an error wrapping
// ErrSecretMissing that names the secret and where it was looked for.
func (s SecretsDir) Secret(prog bot.Program, env bot.EnvironmentName, name string) (string, error) {
	if s.Dir == "" {
		return "", fmt.Errorf("secret %s of %s's %s: %w: the server has no secrets directory (start it with --secrets-dir or STAGEHAND_SECRETS_DIR)", name, prog.FullName(), env, ErrSecretMissing)
	}
	path, err := s.Path(prog, env, name)
	if err != nil {
		return "", fmt.Errorf("secret %s of %s's %s: %w", name, prog.FullName(), env, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("secret %s of %s's %s: %w: no file %s", name, prog.FullName(), env, ErrSecretMissing, path)
	}
	if err != nil {
		return "", fmt.Errorf("reading secret %s of %s's %s from %s: %w", name, prog.FullName(), env, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading secret %s from %s: %w", name, path, err)
	}
	if len(data) > maxSecretBytes {
		return "", fmt.Errorf("secret %s in %s is larger than %d bytes", name, path, maxSecretBytes)
	}
	// A file written by `echo value > file` ends with a newline that is
	// not part of the value.
	return strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r"), nil
}

// Secrets reads the declared secrets of an environment. Missing ones are
// listed in one error that names each and where it was looked for.
func (s SecretsDir) Secrets(prog bot.Program, env bot.EnvironmentName, names []string) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, name := range names {
		v, err := s.Secret(prog, env, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[name] = v
	}
	return out, errors.Join(errs...)
}

// Status says, for each declared secret, "set" or "missing" — never its
// value (/stagehand env list, the dashboard).
func (s SecretsDir) Status(prog bot.Program, env bot.EnvironmentName, names []string) map[string]string {
	out := map[string]string{}
	for _, name := range names {
		out[name] = "set"
		if path, err := s.Path(prog, env, name); err != nil || s.Dir == "" {
			out[name] = "missing"
		} else if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			out[name] = "missing"
		}
	}
	return out
}

// DeclaredSecrets says which secrets an environment declares under the
// program's policy (the default branch's file) and whether the secret
// source has a value for each: for the dashboard and the API, which show
// names, never values.
type DeclaredSecrets struct {
	Policy bot.PolicyReader
	Source interface {
		Status(prog bot.Program, env bot.EnvironmentName, names []string) map[string]string
	}
}

// Status is the declared secrets of prog's env, "set" or "missing".
func (d DeclaredSecrets) Status(ctx context.Context, prog bot.Program, env bot.EnvironmentName) (map[string]string, error) {
	pol, err := d.Policy.Policy(ctx, prog)
	if err != nil {
		return nil, err
	}
	if pol.Config == nil || pol.Config.Environment(env) == nil || len(pol.Config.Environment(env).Secrets) == 0 {
		return nil, nil
	}
	return d.Source.Status(prog, env, pol.Config.Environment(env).Secrets), nil
}

// SecretSource reads the declared secrets of an environment (SecretsDir).
type SecretSource interface {
	Secrets(prog bot.Program, env bot.EnvironmentName, names []string) (map[string]string, error)
}

// secrets are the values of the secrets the step's environment declares:
// none for build and the steps that run no command of the repository.
func (w *StepWorker) secrets(c bot.Claim) (map[string]string, error) {
	env := c.Environment()
	if env == "" {
		return nil, nil
	}
	ec := c.Config.Environment(env)
	if ec == nil || len(ec.Secrets) == 0 {
		return nil, nil
	}
	src := w.Secrets
	if src == nil {
		src = SecretsDir{}
	}
	values, err := src.Secrets(c.Program, env, ec.Secrets)
	if err != nil {
		return nil, fmt.Errorf("not run: a declared secret of %s is missing (the command did not start):\n%w", env, err)
	}
	return values, nil
}
