"""The daemon's pure core: observe, assess, scale, roll out, recover, diff, plan, status.

Plain values in, plain values out. Nothing here talks to the API server, starts a thread,
reads a clock or renders a template: the daemon's shell (`sync.controller`, `sync.preview`)
gathers the live objects and the rendered desired objects first, and executes the plan this
package returns. Import contracts (`.importlinter`) keep it so.
"""
