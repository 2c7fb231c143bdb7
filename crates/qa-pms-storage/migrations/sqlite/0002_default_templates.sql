-- The three default workflow templates, with the fixed ids of qa_pms_core::template.
INSERT INTO workflow_templates (id, name, steps, workflow_type, estimated_minutes, updated_at) VALUES
    ('00000000-0000-4000-8000-000000000001', 'Bug Fix Workflow', '["Reproduce the bug","Verify the fix","Run related regression tests","Update the ticket"]', 'bug', 60, 1767225600000),
    ('00000000-0000-4000-8000-000000000002', 'Feature Test Workflow', '["Review acceptance criteria","Write test cases","Execute test cases","Exploratory testing","Report results"]', 'feature', 120, 1767225600000),
    ('00000000-0000-4000-8000-000000000003', 'Regression Test Workflow', '["Select the regression suite","Run the Postman collection","Run the Testmo cases","Triage failures","Sign off"]', 'regression', 180, 1767225600000);
