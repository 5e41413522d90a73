"""Modality Worklist (one row per Scheduled Procedure Step) and MPPS.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE worklist (
            id                                     bigserial PRIMARY KEY,
            patient_id                             text NOT NULL,
            patient_name                           text,
            patient_birth_date                     text,
            patient_sex                            text,
            accession_number                       text NOT NULL,
            requesting_physician                   text,
            requested_procedure_id                 text NOT NULL,
            requested_procedure_description        text,
            study_instance_uid                     text NOT NULL,
            scheduled_procedure_step_id            text NOT NULL,
            modality                               text NOT NULL,
            scheduled_station_ae_title             text,
            scheduled_procedure_step_start_date    text NOT NULL,
            scheduled_procedure_step_start_time    text,
            scheduled_procedure_step_description   text,
            scheduled_performing_physician_name    text,
            scheduled_procedure_step_status        text NOT NULL DEFAULT 'SCHEDULED'
                CHECK (scheduled_procedure_step_status IN
                       ('SCHEDULED', 'IN PROGRESS', 'COMPLETED', 'DISCONTINUED')),
            created_at                             timestamptz NOT NULL DEFAULT now(),
            updated_at                             timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX worklist_date_time_idx ON worklist
            (scheduled_procedure_step_start_date, scheduled_procedure_step_start_time);
        CREATE INDEX worklist_modality_idx ON worklist (modality);
        CREATE INDEX worklist_station_idx ON worklist (scheduled_station_ae_title);
        CREATE INDEX worklist_status_idx ON worklist (scheduled_procedure_step_status);
        CREATE INDEX worklist_patient_id_idx ON worklist (patient_id);
        CREATE INDEX worklist_patient_name_lower_idx ON worklist
            (lower(patient_name) text_pattern_ops);
        CREATE INDEX worklist_accession_idx ON worklist (accession_number);
        CREATE INDEX worklist_study_uid_idx ON worklist (study_instance_uid);

        CREATE TABLE mpps (
            id                                     bigserial PRIMARY KEY,
            sop_instance_uid                       text NOT NULL UNIQUE,
            performed_procedure_step_status        text NOT NULL
                CHECK (performed_procedure_step_status IN
                       ('IN PROGRESS', 'COMPLETED', 'DISCONTINUED')),
            performed_procedure_step_id            text,
            performed_station_ae_title             text,
            modality                               text,
            patient_id                             text,
            patient_name                           text,
            accession_number                       text,
            study_instance_uid                     text,
            scheduled_procedure_step_id            text,
            performed_procedure_step_start_date    text,
            performed_procedure_step_start_time    text,
            performed_procedure_step_end_date      text,
            performed_procedure_step_end_time      text,
            performed_procedure_step_description   text,
            worklist_fk                            bigint REFERENCES worklist (id)
                                                       ON DELETE SET NULL,
            calling_ae                             text,
            dataset                                jsonb NOT NULL,
            created_at                             timestamptz NOT NULL DEFAULT now(),
            updated_at                             timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX mpps_status_idx ON mpps (performed_procedure_step_status);
        CREATE INDEX mpps_worklist_fk_idx ON mpps (worklist_fk);
        CREATE INDEX mpps_accession_idx ON mpps (accession_number);
        CREATE INDEX mpps_study_uid_idx ON mpps (study_instance_uid);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE mpps, worklist")
