"""The signal cabinet: junction safety rules, the controller protocol, the agent."""
