package bot

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// SetVariable sets an environment variable (rule E): refused while an
// active execution holds the environment, applied at once otherwise and
// used by the next deployment.
func (e *Engine) SetVariable(ctx context.Context, req Request, programID int64, env EnvironmentName, key, value string) (string, error) {
	return e.changeVariable(ctx, req, programID, env, key, &value)
}

// UnsetVariable removes a variable set with SetVariable, under the same
// rule: the next deployment uses the configuration's value, if any.
func (e *Engine) UnsetVariable(ctx context.Context, req Request, programID int64, env EnvironmentName, key string) (string, error) {
	return e.changeVariable(ctx, req, programID, env, key, nil)
}

// changeVariable sets key to *value, or removes it when value is nil.
func (e *Engine) changeVariable(ctx context.Context, req Request, programID int64, env EnvironmentName, key string, value *string) (string, error) {
	if env != Stage && env != Production {
		return "", &Refusal{Code: RefusalBadRequest, Message: fmt.Sprintf("unknown environment %q: use stage or production", env)}
	}
	if err := CheckVariableName(key); err != nil {
		return "", &Refusal{Code: RefusalBadRequest, Message: err.Error()}
	}
	if env == Production {
		if err := requireProductionApprover(req, "change production's variables"); err != nil {
			return "", err
		}
	}
	var msg string
	err := e.update(ctx, req, programID, func(tx EngineTx, prog Program) error {
		active, err := tx.Executions(ctx, ExecutionFilter{ProgramID: programID, States: []ExecutionState{ExecutionRunning, ExecutionWaiting}})
		if err != nil {
			return err
		}
		for _, a := range active {
			if Holds(a.Pipeline, env) {
				return &Refusal{Code: RefusalBlocked, Rule: "E", Message: fmt.Sprintf("%s is held by %s (%s: %s); its variables can change when that execution ends", env, a, describeState(a), e.Link(prog, a.Number))}
			}
		}
		// The audit trail names the variable, never its value.
		scope := Execution{ProgramID: programID}
		if value == nil {
			msg = fmt.Sprintf("%s: %s removed; the next deployment uses the configuration's value, if any", env, key)
			if err := e.audit(ctx, tx, req, AuditVariableUnset, scope, msg, string(env)+"/"+key); err != nil {
				return err
			}
			return tx.UnsetVariable(ctx, programID, env, key)
		}
		msg = fmt.Sprintf("%s: %s set; the next deployment to %s uses it", env, key, env)
		if err := e.audit(ctx, tx, req, AuditVariableSet, scope, msg, string(env)+"/"+key); err != nil {
			return err
		}
		return tx.SetVariable(ctx, programID, env, key, *value)
	})
	return msg, err
}

// Variables lists an environment's variables as the next deployment will
// see them: the policy's (the default branch's file) overridden by those
// set with /stagehand env set. A policy that cannot be read is an error.
func (e *Engine) Variables(ctx context.Context, programID int64, env EnvironmentName) (map[string]string, error) {
	pol, err := e.programPolicy(ctx, Request{}, programID)
	if err != nil {
		return nil, err
	}
	return e.variables(ctx, pol, programID, env)
}

// variables are env's variables under pol.
func (e *Engine) variables(ctx context.Context, pol Policy, programID int64, env EnvironmentName) (map[string]string, error) {
	out := map[string]string{}
	if pol.Config != nil {
		if ec := pol.Config.Environment(env); ec != nil {
			maps.Copy(out, ec.Variables)
		}
	}
	err := e.viewTx(ctx, func(tx EngineTx) error {
		set, err := tx.Variables(ctx, programID, env)
		maps.Copy(out, set)
		return err
	})
	return out, err
}

// ListVariables is /stagehand env list (Markdown): env's variables as the
// next deployment will see them, and its declared secrets with whether the
// server has a value (Engine.Secrets), never the values.
func (e *Engine) ListVariables(ctx context.Context, req Request, programID int64, env EnvironmentName) (string, error) {
	prog, pol, err := e.programAndPolicy(ctx, req, programID)
	if err != nil {
		return "", err
	}
	vars, err := e.variables(ctx, pol, programID, env)
	if err != nil {
		return "", err
	}
	var secrets []string
	if pol.Config != nil {
		if ec := pol.Config.Environment(env); ec != nil {
			secrets = ec.Secrets
		}
	}
	if len(vars) == 0 && len(secrets) == 0 {
		return fmt.Sprintf("%s has no variables", env), nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "variables of %s:\n\n| name | value |\n| --- | --- |\n", env)
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", k, vars[k])
	}
	if len(secrets) > 0 {
		var status map[string]string
		if e.Secrets != nil {
			status = e.Secrets.Status(prog, env, secrets)
		}
		fmt.Fprintf(&b, "\nsecrets of %s (values are never shown):\n\n| name | value |\n| --- | --- |\n", env)
		for _, name := range secrets {
			fmt.Fprintf(&b, "| `%s` | %s |\n", name, cmp.Or(status[name], "missing"))
		}
	}
	return b.String(), nil
}
