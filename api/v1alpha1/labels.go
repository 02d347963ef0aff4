package v1alpha1

// Names that the controller, the agent, the chart and the admission policy share.
const (
	// AgentFinalizer is the finalizer the node agent puts on its ReaperNode before it
	// changes the node, and removes once the node is reverted. Deleting a ReaperNode
	// therefore makes its agent uninstall.
	AgentFinalizer = "reaper.dev/agent"

	// ReadyLabel is the Node label the RuntimeClasses select on. The controller sets it to
	// "true" only while the node's ReaperNode is Ready and the Node's
	// status.runtimeHandlers lists the handler.
	ReadyLabel = "reaper.dev/ready"

	// AgentLabel is the Node label the installer DaemonSet selects on. The controller sets
	// it on every selected Node and keeps it until the node's ReaperNode is gone, so the
	// agent still runs on a deselected node while it reverts the node.
	AgentLabel = "reaper.dev/agent"

	// DefaultOptInLabel is the Namespace label that lets the pods of a namespace use a
	// Reaper RuntimeClass, when set to "true".
	DefaultOptInLabel = "reaper.dev/allowed"
)
