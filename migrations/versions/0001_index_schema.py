"""Index schema: patients, studies, series, instances, remote AEs, statistics.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE patients (
            id                  bigserial PRIMARY KEY,
            patient_id          text NOT NULL UNIQUE,
            patient_name        text,
            patient_birth_date  text,
            patient_sex         text,
            created_at          timestamptz NOT NULL DEFAULT now(),
            updated_at          timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX patients_name_idx ON patients (patient_name text_pattern_ops);
        CREATE INDEX patients_name_lower_idx ON patients (lower(patient_name) text_pattern_ops);

        CREATE TABLE studies (
            id                        bigserial PRIMARY KEY,
            patient_fk                bigint NOT NULL REFERENCES patients (id),
            study_instance_uid        text NOT NULL UNIQUE,
            study_date                text,
            study_time                text,
            accession_number          text,
            study_description         text,
            referring_physician_name  text,
            study_id                  text,
            created_at                timestamptz NOT NULL DEFAULT now(),
            updated_at                timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX studies_patient_fk_idx ON studies (patient_fk);
        CREATE INDEX studies_date_time_idx ON studies (study_date, study_time);
        CREATE INDEX studies_accession_idx ON studies (accession_number);

        CREATE TABLE series (
            id                   bigserial PRIMARY KEY,
            study_fk             bigint NOT NULL REFERENCES studies (id),
            series_instance_uid  text NOT NULL UNIQUE,
            modality             text,
            series_number        integer,
            series_description   text,
            body_part_examined   text,
            created_at           timestamptz NOT NULL DEFAULT now(),
            updated_at           timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX series_study_fk_idx ON series (study_fk);
        CREATE INDEX series_modality_idx ON series (modality);

        CREATE TABLE instances (
            id                   bigserial PRIMARY KEY,
            series_fk            bigint NOT NULL REFERENCES series (id),
            sop_instance_uid     text NOT NULL UNIQUE,
            sop_class_uid        text NOT NULL,
            instance_number      integer,
            transfer_syntax_uid  text NOT NULL,
            file_path            text NOT NULL,
            file_size            bigint NOT NULL,
            calling_ae           text,
            received_at          timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX instances_series_fk_idx ON instances (series_fk, instance_number);

        CREATE TABLE remote_aes (
            name        text PRIMARY KEY,
            host        text NOT NULL,
            port        integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
            created_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE statistics (
            name   text PRIMARY KEY,
            value  bigint NOT NULL DEFAULT 0
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE statistics, remote_aes, instances, series, studies, patients")
